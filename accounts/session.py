"""Inactivity tracking for the automatic logoff."""

import time

from django.conf import settings
from django.http import HttpRequest

LAST_ACTIVITY_KEY = "hematovision_last_activity"
# Pages that poll (job progress) send this header; polling must not keep a session alive.
BACKGROUND_REQUEST_HEADER = "HTTP_X_HEMATOVISION_BACKGROUND"
# Avoid writing the session on every request; a few seconds of slack is harmless.
_TOUCH_GRANULARITY_SECONDS = 5


def session_activity_touch(request: HttpRequest) -> None:
    request.session[LAST_ACTIVITY_KEY] = time.time()


def session_is_idle(request: HttpRequest) -> bool:
    last_activity = request.session.get(LAST_ACTIVITY_KEY)
    if last_activity is None:
        return False
    return time.time() - last_activity > settings.HEMATOVISION_SESSION_IDLE_SECONDS


def session_activity_note(request: HttpRequest) -> None:
    if request.META.get(BACKGROUND_REQUEST_HEADER):
        return
    last_activity = request.session.get(LAST_ACTIVITY_KEY, 0)
    if time.time() - last_activity >= _TOUCH_GRANULARITY_SECONDS:
        session_activity_touch(request)

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse

from accounts.session import session_activity_note, session_is_idle


class IdleLogoutMiddleware:
    """Logs a session-authenticated user off after a period without user activity.

    The request then carries on as anonymous, so pages redirect to the login form and the API
    answers 403, exactly as for anyone else who is not logged in.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            if session_is_idle(request):
                request.hematovision_idle_logout = True
                logout(request)
                messages.info(request, "You were logged off after a period of inactivity.")
            else:
                session_activity_note(request)
        return self.get_response(request)

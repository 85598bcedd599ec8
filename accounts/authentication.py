"""API token authentication with a lifetime: a token older than ``HEMATOVISION_API_TOKEN_HOURS``
is refused (401) and deleted; ``POST /api/auth/token/`` issues a new one. A token also stops
working when its user is deactivated (DRF's own check)."""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from accounts.demo import demo_username_refused


def token_expired(created) -> bool:  # noqa: ANN001  (a datetime)
    return created < timezone.now() - timedelta(hours=settings.HEMATOVISION_API_TOKEN_HOURS)


class ExpiringTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key: str):  # noqa: ANN201
        user, token = super().authenticate_credentials(key)
        if token_expired(token.created):
            token.delete()
            raise exceptions.AuthenticationFailed("Token expired: request a new one at /api/auth/token/.")
        if demo_username_refused(user.get_username()):
            raise exceptions.AuthenticationFailed("Demo accounts work only in the local quick start.")
        return user, token


class DemoAccountRefusalBackend:
    """First of the backends after the lockout's: a demo username outside the quick start stops
    authentication (PermissionDenied ends Django's backend loop), whatever the password; the
    failure is signalled, so it is audited and counted like any other. No ``get_user``: it never
    logs anyone in, so sessions are never bound to it."""

    def authenticate(self, request: HttpRequest | None, username: str | None = None, **credentials: object):  # noqa: ANN201
        if username is not None and demo_username_refused(str(username)):
            raise PermissionDenied("Demo accounts work only in the local quick start.")
        return None

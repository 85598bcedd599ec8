"""API token authentication with a lifetime: a token older than ``HEMATOVISION_API_TOKEN_HOURS``
is refused (401) and deleted; ``POST /api/auth/token/`` issues a new one. A token also stops
working when its user is deactivated (DRF's own check)."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication


def token_expired(created) -> bool:  # noqa: ANN001  (a datetime)
    return created < timezone.now() - timedelta(hours=settings.HEMATOVISION_API_TOKEN_HOURS)


class ExpiringTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key: str):  # noqa: ANN201
        user, token = super().authenticate_credentials(key)
        if token_expired(token.created):
            token.delete()
            raise exceptions.AuthenticationFailed("Token expired: request a new one at /api/auth/token/.")
        return user, token

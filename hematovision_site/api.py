"""Shared REST API pieces: the per-action permission check and error translation."""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView, exception_handler


class ActionPermissions(BasePermission):
    """Each view declares ``required_permissions = {action: (permission, ...)}``.

    An action the map does not name is refused, so a new endpoint is closed until someone
    decides who may use it.
    """

    def has_permission(self, request: Request, view: APIView) -> bool:
        required = getattr(view, "required_permissions", {}).get(getattr(view, "action", None))
        if required is None:
            return False
        return bool(request.user and request.user.is_authenticated and request.user.has_perms(required))


def api_exception_handler(error: Exception, context: dict) -> Response | None:
    """Services raise Django's ValidationError; the API answers it as 400, not 500."""
    if isinstance(error, DjangoValidationError):
        detail = error.message_dict if hasattr(error, "error_dict") else {"detail": error.messages}
        error = exceptions.ValidationError(detail)
    return exception_handler(error, context)

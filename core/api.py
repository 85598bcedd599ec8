"""Shared REST API pieces: the per-action permission check, error translation and a date-time
filter the database can compare with."""

from datetime import datetime, timedelta

import django_filters
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpResponseBase
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework import exceptions, serializers
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


class ApiDocsView(SpectacularSwaggerSplitView):
    """The API's documentation page, for people: a visitor who is not logged in is sent to the login
    page (and back here after it) instead of a bare 401; an API token still opens it."""

    def handle_exception(self, exc: Exception) -> HttpResponseBase:
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            return redirect_to_login(self.request.get_full_path())
        return super().handle_exception(exc)


class Conflict(exceptions.APIException):
    status_code = 409
    default_detail = "The object's state does not allow this now."
    default_code = "conflict"


# A service's ValidationError with this code means "not in this state" (stale), not "bad input".
CONFLICT_CODE = "conflict"
CONFLICT_RESPONSE = OpenApiResponse(
    inline_serializer("Conflict", {"detail": serializers.CharField()}),
    description="The object's state does not allow this now (finished, answered, closed).",
)


def api_exception_handler(error: Exception, context: dict) -> Response | None:
    """Services raise Django's ValidationError; the API answers it as 400, not 500, or as 409 when
    its code says the object's state (not the request) is what refuses it."""
    if isinstance(error, DjangoValidationError) and getattr(error, "code", None) == CONFLICT_CODE:
        error = Conflict(" ".join(error.messages))
    elif isinstance(error, DjangoValidationError):
        detail = error.message_dict if hasattr(error, "error_dict") else {"detail": error.messages}
        error = exceptions.ValidationError(detail)
    return exception_handler(error, context)


_DETAIL = {"$ref": "#/components/schemas/ErrorDetail"}
_ERROR_SCHEMAS = {
    "ErrorDetail": {
        "type": "object",
        "properties": {"detail": {"type": "string"}},
        "required": ["detail"],
    },
    "ValidationErrors": {
        "type": "object",
        "description": "Messages per field name (or under 'detail' / 'non_field_errors').",
        "additionalProperties": {},
    },
}


def _error(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def error_responses_document(result: dict, generator: object, request: object, public: bool) -> dict:
    """drf-spectacular postprocessing hook: each operation documents the errors it can answer
    (401/403 everywhere, 404 for an id or a page, 400 for a write or a query), unless it
    already documents that status itself."""
    result.setdefault("components", {}).setdefault("schemas", {}).update(_ERROR_SCHEMAS)
    for path, path_item in result.get("paths", {}).items():
        for method, operation in path_item.items():
            query = [p for p in operation.get("parameters", []) if p.get("in") == "query"]
            errors = {
                "401": _error("Not authenticated: send a token or log in.", _DETAIL),
                "403": _error("This role may not do this (or the session's CSRF token is missing).", _DETAIL),
            }
            if "{" in path or any(parameter["name"] == "page" for parameter in query):
                errors["404"] = _error("No such object visible to this user, or no such page.", _DETAIL)
            # Services refuse a write the object's state does not allow (ValidationError → 400).
            if "requestBody" in operation or query or method != "get":
                ref = {"$ref": "#/components/schemas/ValidationErrors"}
                errors["400"] = _error("The request is invalid; the messages say why.", ref)
            if "requestBody" in operation:
                errors["415"] = _error("The body's Content-Type is not one the operation reads.", _DETAIL)
            responses = operation.setdefault("responses", {})
            for status_code, response in errors.items():
                responses.setdefault(status_code, response)
    return result


# PostgreSQL keeps time zone offsets within ±15:59; Python accepts up to ±23:59.
_MAX_UTC_OFFSET = timedelta(hours=15, minutes=59)


class DatabaseDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time the database can compare with: an offset beyond ±15:59 is a 400 with
    the reason, not a database error."""

    def clean(self, value: object) -> datetime | None:
        cleaned = super().clean(value)
        offset = cleaned.utcoffset() if cleaned is not None else None
        if offset is not None and abs(offset) > _MAX_UTC_OFFSET:
            raise DjangoValidationError("The time zone offset must be within ±15:59.", code="invalid")
        return cleaned


class DatabaseDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = DatabaseDateTimeField

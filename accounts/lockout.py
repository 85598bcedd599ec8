"""django-axes' database handler with one more lock: per client address, across usernames.

Axes locks a username from the address that keeps failing (``AXES_LOCKOUT_PARAMETERS``), so a
stranger elsewhere cannot lock a colleague out; but a password spray, one or two guesses at
each of many usernames from one address, never reaches that limit. So an address is also locked
once its failures over all usernames within the cool-off reach
``HEMATOVISION_LOGIN_ADDRESS_FAILURE_LIMIT`` (higher than the per-username limit: a ward's
shared terminal or a NAT may carry a few colleagues' typos).
"""

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone


def address_failures(ip_address: str) -> int:
    """Failed attempts from the address over all usernames, within the cool-off."""
    attempts = AccessAttempt.objects.filter(ip_address=ip_address)
    cool_off = get_cool_off()
    if cool_off is not None:
        attempts = attempts.filter(attempt_time__gte=timezone.now() - cool_off)
    return attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0


def _address_locked(request: HttpRequest) -> bool:
    address = getattr(request, "axes_ip_address", None)
    return bool(address) and address_failures(address) >= settings.HEMATOVISION_LOGIN_ADDRESS_FAILURE_LIMIT


class AddressLimitHandler(AxesDatabaseHandler):
    def is_locked(self, request: HttpRequest, credentials: dict | None = None) -> bool:
        return super().is_locked(request, credentials) or _address_locked(request)

    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs) -> None:  # noqa: ANN001
        """As axes, which locks at the failure that reaches its limit; the address limit too."""
        super().user_login_failed(sender, credentials, request, **kwargs)
        already = request is None or getattr(request, "axes_locked_out", False)
        if not already and _address_locked(request):
            request.axes_locked_out = True
            request.axes_credentials = credentials


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: dict | None
) -> HttpResponse:
    """``AXES_LOCKOUT_CALLABLE``: 429 everywhere, in JSON for the API (the token endpoint), the
    locked-out page for the login form, sign and amend pages; ``Retry-After`` says when to retry."""
    cool_off = get_cool_off(request)
    retry_after = {"Retry-After": str(int(cool_off.total_seconds()))} if cool_off else {}
    if request.path.startswith("/api/"):
        detail = "Too many failed attempts: locked out for a while from this address. Try again later."
        return JsonResponse({"detail": detail}, status=429, headers=retry_after)
    response = render(request, settings.AXES_LOCKOUT_TEMPLATE, status=429)
    for name, value in retry_after.items():
        response[name] = value
    return response

import json
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse


class RequestSizeLimitMiddleware:
    """Refuses an over-large request before anything reads its body.

    It has to run before the CSRF middleware, which parses multipart bodies (spooling uploads to
    disk) to find the form token.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return HttpResponse("Invalid Content-Length.", status=400, content_type="text/plain")
        limit = settings.HEMATOVISION_UPLOAD_MAX_REQUEST_BYTES
        if length > limit:
            message = (
                f"The request is larger than {limit / (1024 * 1024):g} MB; send the files in smaller batches."
            )
            if request.path.startswith("/api/"):
                return HttpResponse(
                    json.dumps({"detail": message}), status=413, content_type="application/json"
                )
            return HttpResponse(message, status=413, content_type="text/plain")
        return self.get_response(request)


class ContentSecurityPolicyMiddleware:
    """Scripts and styles from this origin only; no framing, no plugins, forms post here; and no
    browser feature (camera, microphone, location...) for any page (Permissions-Policy)."""

    POLICY = (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
        "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    )
    PERMISSIONS = (
        "accelerometer=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), hid=(), "
        "magnetometer=(), microphone=(), midi=(), payment=(), serial=(), usb=(), interest-cohort=()"
    )

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", self.POLICY)
        response.headers.setdefault("Permissions-Policy", self.PERMISSIONS)
        return response


class NoStoreMiddleware:
    """Pages and API answers carry patient data: no cache (browser, proxy, shared terminal's back
    button) may keep them. ``no-store`` unless the view chose its own policy (cell images:
    ``private`` and short). Static files (whitenoise, above the login) keep theirs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        personal = request.path.startswith("/api/") or (user is not None and user.is_authenticated)
        if personal and "Cache-Control" not in response:
            response["Cache-Control"] = "no-store"
        return response

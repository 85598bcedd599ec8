from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from audit.context import client_address_reset, client_address_set


class ClientAddressMiddleware:
    """Makes the client's address available to audit writes made while handling the request.

    Only REMOTE_ADDR is trusted; behind a proxy, have the proxy (or gunicorn's
    --forwarded-allow-ips) set it rather than trusting a client-supplied header.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = client_address_set(request.META.get("REMOTE_ADDR"))
        try:
            return self.get_response(request)
        finally:
            client_address_reset(token)

"""Where the current request came from, for the audit trail.

Set by ``audit.middleware.ClientAddressMiddleware`` for the duration of a request so services
need not thread the address through every call; empty outside requests (Celery tasks, commands).
"""

import ipaddress
from contextvars import ContextVar, Token

_client_address: ContextVar[str] = ContextVar("client_address", default="")


def client_address_current() -> str:
    return _client_address.get()


def client_address_set(raw_address: str | None) -> Token[str]:
    try:
        address = str(ipaddress.ip_address((raw_address or "").strip()))
    except ValueError:
        address = ""
    return _client_address.set(address)


def client_address_reset(token: Token[str]) -> None:
    _client_address.reset(token)

from django.conf import settings
from django.http import HttpRequest


def session_idle(request: HttpRequest) -> dict[str, int]:
    """Lets the page reload itself once the session has idled out, showing the login form."""
    return {"session_idle_seconds": settings.HEMATOVISION_SESSION_IDLE_SECONDS}

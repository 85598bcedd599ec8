"""Logins, failed logins and logouts go into the audit trail."""

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

from accounts.models import User
from accounts.session import session_activity_touch
from audit.models import AuditAction
from audit.services import audit_event_record


@receiver(user_logged_in)
def audit_login(sender: type, request: HttpRequest, user: User, **kwargs: object) -> None:
    session_activity_touch(request)
    audit_event_record(action=AuditAction.LOGIN, actor=user, target=user)


@receiver(user_login_failed)
def audit_login_failed(
    sender: str, credentials: dict, request: HttpRequest | None = None, **kwargs: object
) -> None:
    locked_out = bool(getattr(request, "axes_locked_out", False))
    audit_event_record(
        action=AuditAction.LOGIN_FAILED,
        actor=None,
        actor_username=str(credentials.get("username", ""))[:150],
        reason="account locked after repeated failures" if locked_out else "",
    )


@receiver(user_logged_out)
def audit_logout(sender: type, request: HttpRequest, user: User | None, **kwargs: object) -> None:
    if user is None:
        return
    expired = getattr(request, "hematovision_idle_logout", False)
    audit_event_record(
        action=AuditAction.SESSION_EXPIRED if expired else AuditAction.LOGOUT,
        actor=user,
        target=user,
        reason="no activity within the session idle limit" if expired else "",
    )

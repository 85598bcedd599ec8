"""User administration. Every action writes its audit event in the same transaction."""

from axes.utils import reset as axes_reset
from django.contrib.auth import authenticate
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from rest_framework.authtoken.models import Token

from accounts.models import User
from accounts.roles import Role
from accounts.selectors import user_login_lock
from audit.models import AuditAction
from audit.services import audit_event_record


def _role_set(user: User, role: Role) -> None:
    user.groups.remove(*Group.objects.filter(name__in=Role.values))
    user.groups.add(Group.objects.get(name=role.value))


def _ensure_not_last_active_admin(user: User) -> None:
    """The lab must never lock itself out of user administration."""
    other_admins = User.objects.filter(is_active=True, groups__name=Role.ADMIN).exclude(pk=user.pk)
    if user.role == Role.ADMIN and not other_admins.exists():
        raise ValidationError("This is the last active admin; make another admin first.")


@transaction.atomic
def user_create(
    *,
    actor: User | None,
    username: str,
    password: str,
    role: Role,
    first_name: str = "",
    last_name: str = "",
    email: str = "",
    reason: str = "",
) -> User:
    """Create an active user holding one role. ``actor`` is None only for the command line."""
    user = User(username=username, first_name=first_name, last_name=last_name, email=email)
    user.full_clean(exclude=["password"])
    validate_password(password, user)
    user.set_password(password)
    user.save()
    _role_set(user, Role(role))
    audit_event_record(
        action=AuditAction.USER_CREATED,
        actor=actor,
        target=user,
        after={
            "username": username,
            "role": Role(role).value,
            "first_name": first_name,
            "last_name": last_name,
        },
        reason=reason,
    )
    return user


@transaction.atomic
def user_role_change(*, actor: User, user: User, role: Role, reason: str = "") -> User:
    previous = user.role
    if previous == role:
        return user
    if role != Role.ADMIN:
        _ensure_not_last_active_admin(user)
    _role_set(user, Role(role))
    audit_event_record(
        action=AuditAction.USER_ROLE_CHANGED,
        actor=actor,
        target=user,
        before={"role": previous.value if previous else None},
        after={"role": Role(role).value},
        reason=reason,
    )
    return user


@transaction.atomic
def user_deactivate(*, actor: User, user: User, reason: str) -> User:
    """The user can no longer log in (nor use the API); a reason is required, kept in the trail."""
    reason = reason.strip()
    if not reason:
        raise ValidationError("Say why the account is deactivated: a reason is required.")
    if user.pk == actor.pk:
        raise ValidationError("You cannot deactivate your own account.")
    if not user.is_active:
        raise ValidationError(f"{user.username} is already inactive.")
    _ensure_not_last_active_admin(user)
    user.is_active = False
    user.save(update_fields=["is_active"])
    # An inactive user's API token must stop working too (sessions already do: inactive users
    # fail authentication on every request).
    Token.objects.filter(user=user).delete()
    audit_event_record(
        action=AuditAction.USER_DEACTIVATED,
        actor=actor,
        target=user,
        before={"is_active": True},
        after={"is_active": False},
        reason=reason,
    )
    return user


@transaction.atomic
def user_reactivate(*, actor: User, user: User, reason: str = "") -> User:
    if user.is_active:
        raise ValidationError(f"{user.username} is already active.")
    user.is_active = True
    user.save(update_fields=["is_active"])
    audit_event_record(
        action=AuditAction.USER_REACTIVATED,
        actor=actor,
        target=user,
        before={"is_active": False},
        after={"is_active": True},
        reason=reason,
    )
    return user


@transaction.atomic
def user_password_reset(*, actor: User, user: User, new_password: str, reason: str = "") -> User:
    """Set a new password chosen by an admin. Existing sessions and API tokens of the user end."""
    validate_password(new_password, user)
    user.set_password(new_password)
    user.save(update_fields=["password"])
    Token.objects.filter(user=user).delete()
    # Never the password itself, not even hashed, in the trail.
    audit_event_record(action=AuditAction.USER_PASSWORD_RESET, actor=actor, target=user, reason=reason)
    return user


@transaction.atomic
def api_token_issue(*, user: User) -> Token:
    """A fresh API token; any earlier token of the user stops working."""
    Token.objects.filter(user=user).delete()
    token = Token.objects.create(user=user)
    audit_event_record(action=AuditAction.API_TOKEN_ISSUED, actor=user, target=user)
    return token


class ReauthenticationFailed(ValidationError):
    """The password re-entered to sign (or amend) is wrong, or the account is locked out."""


def user_reauthenticate(*, user: User, password: str, request: HttpRequest) -> None:
    """Check a re-entered password through the login's own backends, so a failure counts towards
    (and a lockout applies to) the same django-axes lockout as the login form: re-authentication is
    no password oracle beside it. ``request`` gives the lockout its client address."""
    authenticated = authenticate(request, username=user.get_username(), password=password)
    if authenticated is not None and authenticated.pk == user.pk:
        return
    if getattr(request, "axes_locked_out", False):
        raise ReauthenticationFailed("Too many wrong passwords: the account is locked for a while")
    raise ReauthenticationFailed("The password is not correct")


@transaction.atomic
def user_unlock(*, actor: User, user: User, reason: str = "") -> int:
    """Lift the login lockout of the user (from every address): their failed logins are forgotten,
    so they may try again at once. Returns how many lockout records were removed."""
    lock = user_login_lock(user=user)
    if not lock.attempts:
        raise ValidationError(f"{user.username} has no failed logins to clear; the account is not locked.")
    removed = axes_reset(username=user.get_username())
    audit_event_record(
        action=AuditAction.USER_UNLOCKED,
        actor=actor,
        target=user,
        before={
            "locked": lock.locked,
            "failures": sum(attempt.failures for attempt in lock.attempts),
            "addresses": [attempt.ip_address for attempt in lock.attempts],
        },
        after={"locked": False},
        reason=reason.strip(),
    )
    return removed

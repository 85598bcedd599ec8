"""Reading users. Only user administrators see anyone."""

from dataclasses import dataclass
from datetime import datetime

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import User


def user_visible_queryset(user: AbstractBaseUser) -> QuerySet[User]:
    if not user.is_authenticated or not user.has_perm("accounts.view_user"):
        return User.objects.none()
    return User.objects.prefetch_related("groups")


def user_list(*, user: AbstractBaseUser, search: str = "", active: bool | None = None) -> QuerySet[User]:
    users = user_visible_queryset(user)
    if search:
        users = users.filter(
            Q(username__icontains=search) | Q(first_name__icontains=search) | Q(last_name__icontains=search)
        )
    if active is not None:
        users = users.filter(is_active=active)
    return users.order_by("username")


@dataclass(frozen=True)
class FailedLogins:
    """Failed logins of one username from one address, within the lockout's cool-off time."""

    ip_address: str
    failures: int
    last_attempt: datetime
    locked_until: datetime | None  # None: not (yet) locked


@dataclass(frozen=True)
class LoginLock:
    attempts: list[FailedLogins]

    @property
    def locked(self) -> bool:
        return any(attempt.locked_until for attempt in self.attempts)

    @property
    def locked_until(self) -> datetime | None:
        return max((a.locked_until for a in self.attempts if a.locked_until), default=None)


def user_login_lock(*, user: User) -> LoginLock:
    """The user's failed logins still counted by the lockout (django-axes), per address, and
    whether they lock the account now: as many failures as the limit, within the cool-off time."""
    cool_off = settings.AXES_COOLOFF_TIME
    since = timezone.now() - cool_off
    rows = AccessAttempt.objects.filter(username=user.get_username(), attempt_time__gte=since)
    attempts = [
        FailedLogins(
            ip_address=row.ip_address or "",
            failures=row.failures_since_start,
            last_attempt=row.attempt_time,
            locked_until=row.attempt_time + cool_off
            if row.failures_since_start >= settings.AXES_FAILURE_LIMIT
            else None,
        )
        for row in rows.order_by("-attempt_time")
    ]
    return LoginLock(attempts)

"""Reading users. Only user administrators see anyone."""

from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import Q, QuerySet

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

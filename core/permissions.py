"""Access declarations for HTML views (anonymous users go to the login page, logged-in users
without the permission get 403) and the same check for services (``actor_permission_require``)."""

from collections.abc import Callable

from django.contrib.auth.decorators import login_required, permission_required, user_passes_test
from django.core.exceptions import PermissionDenied


def permission_needed(*permissions: str) -> Callable:
    def decorate(view: Callable) -> Callable:
        return login_required(permission_required(permissions, raise_exception=True)(view))

    return decorate


def any_permission_needed(*permissions: str) -> Callable:
    """Like ``permission_needed``, for a view that serves users holding any one of ``permissions``
    (the view then scopes what each may see)."""

    def allowed(user) -> bool:  # noqa: ANN001
        if any(user.has_perm(permission) for permission in permissions):
            return True
        raise PermissionDenied

    def decorate(view: Callable) -> Callable:
        return login_required(user_passes_test(allowed)(view))

    return decorate


def actor_permission_require(actor, permission: str) -> None:  # noqa: ANN001
    """For services: refuse an inactive actor or one without ``permission``. The views check too;
    this keeps a role rule from depending on every caller remembering it."""
    if not actor.is_active or not actor.has_perm(permission):
        raise PermissionDenied(f"{actor.get_username()} may not do this ({permission}).")

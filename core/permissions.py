"""Access declarations for HTML views: anonymous users go to the login page, logged-in users
without the permission get 403."""

from collections.abc import Callable

from django.contrib.auth.decorators import login_required, permission_required


def permission_needed(*permissions: str) -> Callable:
    def decorate(view: Callable) -> Callable:
        return login_required(permission_required(permissions, raise_exception=True)(view))

    return decorate

"""System checks of accounts (registered in ``apps.py``)."""

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.db import DatabaseError
from django.db.models.functions import Lower

from accounts.demo import DEMO_USERNAMES


@register(Tags.security, deploy=True)
def demo_accounts_absent(app_configs: object = None, **kwargs: object) -> list[CheckMessage]:
    """``check --deploy`` fails while a demo account exists outside the quick start."""
    if settings.HEMATOVISION_DEMO_USERS_ALLOWED:
        return []
    from accounts.models import User

    try:
        users = User.objects.annotate(lowered=Lower("username")).filter(lowered__in=DEMO_USERNAMES)
        present = sorted(users.values_list("username", flat=True))
    except DatabaseError:
        # No database to ask (e.g. a build step): logins refuse the demo usernames anyway.
        return []
    if not present:
        return []
    return [
        Error(
            f"Demo accounts exist in this database: {', '.join(present)}.",
            hint="Their passwords are published. Deactivate or rename them (an admin's user page), "
            "then create real accounts (manage.py create_admin).",
            id="hematovision.E001",
        )
    ]

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

from accounts.demo import DEMO_ACCOUNTS
from accounts.models import User


class Command(BaseCommand):
    help = "Create (or reset) one demo user per role for the local quick start and print them."

    def handle(self, *args, **options) -> None:
        if not settings.HEMATOVISION_DEMO_USERS_ALLOWED:
            raise CommandError("Demo users are refused with these settings (production).")
        self.stdout.write("Demo accounts (local quick start only):")
        for username, password, role, first_name, last_name in DEMO_ACCOUNTS:
            user, _ = User.objects.get_or_create(username=username)
            user.first_name, user.last_name, user.is_active = first_name, last_name, True
            # An address, so consult notifications show on the console mail backend of make run.
            user.email = f"{username}@example.org"
            # Set directly: the published demo passwords would not pass the production validators.
            user.set_password(password)
            user.save()
            user.groups.set([Group.objects.get(name=role.value)])
            self.stdout.write(f"  {role.label:<12} username {username:<12} password {password}")

import getpass
import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.roles import Role
from accounts.services import user_create


class Command(BaseCommand):
    help = (
        "Create a user with the ADMIN role, e.g. the first admin of a deployment. The password is "
        "asked for on a terminal, or read from the first line of standard input."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--first-name", default="")
        parser.add_argument("--last-name", default="")
        parser.add_argument("--email", default="")

    def handle(self, *args, **options) -> None:
        password = getpass.getpass("Password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
        try:
            user = user_create(
                actor=None,
                username=options["username"],
                password=password,
                role=Role.ADMIN,
                first_name=options["first_name"],
                last_name=options["last_name"],
                email=options["email"],
                reason="created on the command line (manage.py create_admin)",
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from error
        self.stdout.write(self.style.SUCCESS(f"Admin {user.username} created."))

from django.contrib.auth.models import AbstractUser

from accounts.roles import Role


class User(AbstractUser):
    """A member of the lab. Access comes from exactly one role group (see ``accounts.roles``)."""

    class Meta:
        ordering = ["username"]

    @property
    def role(self) -> Role | None:
        names = {group.name for group in self.groups.all()}
        return next((role for role in Role if role.value in names), None)

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.username

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and roles"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from accounts import checks, signals  # noqa: F401  (registers checks, connects audit receivers)
        from accounts.roles import roles_sync_after_migrate

        post_migrate.connect(roles_sync_after_migrate, sender=self)

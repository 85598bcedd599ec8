from django.core.management.base import BaseCommand, CommandError

from audit.selectors import audit_chain_verify


class Command(BaseCommand):
    help = "Walk the audit hash chain; exit 0 when intact, else name the first broken event."

    def handle(self, *args, **options) -> None:
        result = audit_chain_verify()
        if not result.intact:
            raise CommandError(
                f"Audit chain broken at event #{result.first_broken_id}: {result.problem} "
                f"({result.checked} events before it are intact)."
            )
        self.stdout.write(self.style.SUCCESS(f"Audit chain intact: {result.checked} events verified."))

"""Append a long valid audit chain (default 1,000,000 events) for measuring ``verify_audit``."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from devtools.audit_seed import SeedProgress, audit_chain_seed


class Command(BaseCommand):
    help = "Append N made-up, validly chained audit events in bulk; refuses production settings."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--events", type=int, default=1_000_000)
        parser.add_argument("--batch-size", type=int, default=50_000, help="events per COPY and transaction")
        parser.add_argument("--days", type=int, default=365, help="the events' times span this many days")

    def handle(self, *args, events: int, batch_size: int, days: int, **options) -> None:
        if not settings.HEMATOVISION_DEMO_USERS_ALLOWED:
            raise CommandError("This writes made-up audit events: never run it on a production database.")
        if events < 1 or batch_size < 1 or days < 1:
            raise CommandError("--events, --batch-size and --days must be positive.")
        audit_chain_seed(events=events, batch_size=batch_size, days=days, progress=self._progress)

    def _progress(self, progress: SeedProgress) -> None:
        rate = progress.written / progress.seconds if progress.seconds else 0.0
        percent = 100 * progress.written / progress.total
        self.stdout.write(
            f"seeded {progress.written:,} of {progress.total:,} events ({percent:.1f} %), "
            f"{rate:,.0f} events/s, {progress.seconds:.1f} s"
        )
        self.stdout.flush()  # progress is for watching: not held back when piped to a log

from django.core.management.base import BaseCommand

from classifier.services import quick_classifications_purge


class Command(BaseCommand):
    help = "Delete quick-classify images and results older than --hours (default 24)."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--hours", type=int, default=24)

    def handle(self, *args, hours: int, **options) -> None:
        count = quick_classifications_purge(older_than_seconds=hours * 3600)
        self.stdout.write(f"Deleted {count} quick classifications.")

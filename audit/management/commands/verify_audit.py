from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.selectors import audit_anchor_present, audit_chain_verify


class Command(BaseCommand):
    help = (
        "Walk the audit hash chain; exit 0 when intact, else name the first broken event. Prints "
        "the head hash: record it elsewhere and pass it later with --anchor to also detect removed "
        "newest events or a rewritten chain."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--anchor", action="append", default=[], help="a head hash printed by an earlier run"
        )

    def handle(self, *args, **options) -> None:
        result = audit_chain_verify()
        if not result.intact and result.first_broken_id is None:
            raise CommandError(f"Audit trail broken: {result.problem}.")
        if not result.intact:
            raise CommandError(
                f"Audit chain broken at event #{result.first_broken_id}: {result.problem} "
                f"({result.checked} events before it are intact)."
            )
        for anchor in options["anchor"]:
            if not audit_anchor_present(anchor):
                raise CommandError(
                    f"Anchor {anchor} is no longer in the audit chain: events were removed or rewritten."
                )
        self.stdout.write(
            self.style.SUCCESS(
                f"Audit chain intact: {result.checked} events verified; head hash {result.head_hash}"
            )
        )

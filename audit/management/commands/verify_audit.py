import getpass
import socket

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.models import AuditCheckpoint
from audit.selectors import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_PROGRESS_EVERY,
    ChainVerification,
    VerificationProgress,
    audit_anchor_present,
)
from audit.services import audit_chain_verify_and_checkpoint

# Exit statuses (docs/security.md): 0 intact; 1 any other error (e.g. no database); 2 bad
# arguments; this one when the trail fails verification, so monitoring can tell them apart.
EXIT_TAMPERED = 3


class Command(BaseCommand):
    help = (
        "Walk the audit hash chain from the latest checkpoint (--full: from the first event); exit 0 "
        "and write a checkpoint when intact, else exit 3 naming the first broken event. Prints the "
        "head hash: record it elsewhere and pass it later with --anchor to also detect removed "
        "newest events or a rewritten chain."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--anchor", action="append", default=[], help="a head hash printed by an earlier run"
        )
        parser.add_argument(
            "--full", action="store_true", help="verify from the first event, not from the latest checkpoint"
        )
        parser.add_argument(
            "--batch-size", type=_positive, default=DEFAULT_BATCH_SIZE, help="events per query"
        )
        parser.add_argument(
            "--progress-every",
            type=_positive,
            default=DEFAULT_PROGRESS_EVERY,
            help="report progress every N events",
        )

    def handle(self, *args, **options) -> None:
        # Anchors first: one indexed look-up each, and decisive whatever the chain says.
        for anchor in options["anchor"]:
            if not audit_anchor_present(anchor):
                raise CommandError(
                    f"Anchor {anchor} is no longer in the audit chain: events were removed or rewritten.",
                    returncode=EXIT_TAMPERED,
                )
        result, checkpoint = audit_chain_verify_and_checkpoint(
            full=options["full"],
            run_by=f"{getpass.getuser()}@{socket.gethostname()}: manage.py verify_audit"
            + (" --full" if options["full"] else ""),
            batch_size=options["batch_size"],
            progress=self._progress,
            progress_every=options["progress_every"],
        )
        if not result.intact:
            raise CommandError(_failure(result), returncode=EXIT_TAMPERED)
        self.stdout.write(self.style.SUCCESS(_success(result, checkpoint)))

    def _progress(self, progress: VerificationProgress) -> None:
        self.stdout.write(
            f"  verified {progress.checked:,} of {progress.total:,} events ({progress.percent:.1f} %), "
            f"{progress.events_per_second:,.0f} events/s, {progress.seconds:.1f} s"
        )
        self.stdout.flush()  # progress is for watching: not held back when piped to a log


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


def _start(result: ChainVerification) -> str:
    if result.since is None:
        return "from the first event"
    return f"after checkpoint #{result.since.pk} (event #{result.since.last_event_id})"


def _failure(result: ChainVerification) -> str:
    if result.first_broken_id is None:
        return f"Audit trail broken: {result.problem}."
    return (
        f"Audit chain broken at event #{result.first_broken_id}: {result.problem} "
        f"({result.checked} events {_start(result)} before it are intact). No checkpoint written."
    )


def _success(result: ChainVerification, checkpoint: AuditCheckpoint | None) -> str:
    seconds = checkpoint.duration.total_seconds() if checkpoint is not None else 0.0
    rate = f", {result.checked / seconds:,.0f} events/s" if seconds > 0 and result.checked else ""
    written = (
        f"checkpoint #{checkpoint.pk} written at event #{checkpoint.last_event_id}"
        if checkpoint is not None
        else "no checkpoint (no events)"
    )
    return (
        f"Audit chain intact: {result.checked} events verified {_start(result)} in {seconds:.2f} s{rate}; "
        f"{result.event_count} events in the chain; {written}; head hash {result.head_hash}"
    )

"""manage.py model_adapt: gather the lab's verified cells and adapt the active model to them.

Runs the adaptation in this process by default, printing its progress (the same code as the
training worker: the run is recorded, audited and its result registered as a candidate);
``--enqueue`` queues it for the training worker instead and returns at once.
"""

from datetime import date

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from classifier.adaptation import adaptation_run_execute
from classifier.models import AdaptationRunStatus
from review.adaptation import LabCellSelection, lab_adaptation_start, lab_cell_counts


class Command(BaseCommand):
    help = "Adapt the active model to this lab from its verified cells; the result is a candidate."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument(
            "--all-reviewed",
            action="store_true",
            help="Also cells of slides not signed yet (default: signed only)",
        )
        parser.add_argument(
            "--from", dest="date_from", type=date.fromisoformat, help="Reviewed on or after (ISO)"
        )
        parser.add_argument(
            "--to", dest="date_to", type=date.fromisoformat, help="Reviewed on or before (ISO)"
        )
        parser.add_argument("--user", help="The admin recorded as having started it (default: system)")
        parser.add_argument("--enqueue", action="store_true", help="Queue for the training worker and return")
        parser.add_argument("--dry-run", action="store_true", help="Only print the per-class counts")

    def handle(self, *args, **options) -> None:
        actor = self._actor(options["user"])
        try:
            selection = LabCellSelection(
                signed_only=not options["all_reviewed"],
                date_from=options["date_from"],
                date_to=options["date_to"],
            )
            counts = lab_cell_counts(selection=selection)
            self.stdout.write(f"Verified cells: {counts.counts} ({counts.total} from {counts.slides} slides)")
            if options["dry_run"]:
                return
            run = lab_adaptation_start(actor=actor, selection=selection, enqueue=options["enqueue"])
        except (ValidationError, PermissionError) as error:
            raise CommandError(" ".join(getattr(error, "messages", [str(error)]))) from error
        if options["enqueue"]:
            self.stdout.write(f"Adaptation run {run.pk} queued for the training worker.")
            return
        run_id = run.pk
        run = adaptation_run_execute(run_id=run_id, echo=self.stdout.write)
        if run is None:
            raise CommandError(f"Adaptation run {run_id} was taken by another process.")
        if run.status != AdaptationRunStatus.SUCCEEDED:
            raise CommandError(f"Adaptation run {run_id} {run.status}: {run.error}")
        self.stdout.write(
            f"Adaptation run {run.pk} succeeded: candidate {run.result_model_version.name} registered "
            "(not active; compare and activate it on the Models page)."
        )

    def _actor(self, username: str | None) -> User | None:
        if username is None:
            return None
        user = User.objects.filter(username=username, is_active=True).first()
        if user is None or not user.has_perm("classifier.add_adaptationrun"):
            raise CommandError(f"{username} is not an active admin.")
        return user

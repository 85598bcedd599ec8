"""Adapting the active model to the lab from its pathologists' verified cells (``ml.adapt``).

The cells are chosen by the caller (``review.adaptation`` gathers the final labels: review is a
layer above this app) and frozen into the run. The worker of the ``training`` queue copies their
stored images into a class-folder directory named ``<slide id>__<cell id>`` (so ``ml.lab`` knows
the slides and holds out whole ones), calls ``ml.adapt.adapt`` with a progress callback and a
cancellation check, and registers the result as a *candidate* model version: never active until
an admin activates it with their password. ``ml.adapt`` writes under a temporary name and renames
at the end, so a killed worker leaves no directory at the output path; the sweep
(``adaptation_runs_fail_silent``) marks its run failed and removes what it left.
"""

import logging
import shutil
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import fields
from datetime import date, timedelta
from pathlib import Path

import redis
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from accounts.models import User
from audit.models import AuditAction
from audit.services import audit_event_record
from cases.models import CellImage
from classifier.adapter import (
    MIN_CELLS_PER_CLASS,
    AdaptationCancelled,
    AdaptationUnusable,
    AdaptConfig,
    ModelLoadError,
    Progress,
    adapt,
    model_directory_verify,
)
from classifier.models import (
    ADAPTATION_RUN_TRANSITIONS,
    ADAPTATION_RUN_UNFINISHED,
    AdaptationRun,
    AdaptationRunStatus,
    CellClass,
    ModelVersion,
)
from classifier.services import model_version_active, model_version_register, row_heartbeat

logger = logging.getLogger(__name__)

WORKER_ACTOR = "training-worker"
ADAPTATION_MINIMUM = MIN_CELLS_PER_CLASS  # verified cells per class, as ml.adapt requires
ADAPTED_SUBDIRECTORY = "adapted"  # under HEMATOVISION_MODELS_ROOT, ignored by git
# Share of the progress bar each ml.adapt stage ends at (training is most of the time).
STAGE_PERCENT = {
    "gather": 3,
    "read": 5,
    "features": 12,
    "train": 80,
    "export": 88,
    "calibrate": 92,
    "domain": 95,
    "evaluate": 99,
    "done": 100,
}
CANCEL_CHECK_SECONDS = 1.0


class AdaptationError(ValidationError):
    """The adaptation cannot be started or cancelled as asked; nothing was changed."""


# --- Starting and cancelling (web side) ----------------------------------------------------------------


def adaptation_class_counts(cells: list[tuple[int, str]]) -> dict[str, int]:
    counts = dict.fromkeys(CellClass.values, 0)
    for _, label in cells:
        counts[label] += 1
    return counts


def adaptation_counts_refusal(counts: dict[str, int]) -> str:
    """Why these per-class counts cannot be adapted from, or "" (ml.adapt refuses the same)."""
    missing = [name for name, count in counts.items() if count == 0]
    if missing:
        return f"No verified cells of {', '.join(missing)}: every class needs at least {MIN_CELLS_PER_CLASS}."
    few = [f"{name} {count}" for name, count in counts.items() if count < MIN_CELLS_PER_CLASS]
    if few:
        return f"Every class needs at least {MIN_CELLS_PER_CLASS} verified cells; fewer for {', '.join(few)}."
    return ""


def adaptation_run_unfinished() -> AdaptationRun | None:
    return AdaptationRun.objects.filter(status__in=ADAPTATION_RUN_UNFINISHED).first()


def adaptation_run_create(
    *,
    actor: User | None,
    cells: list[tuple[int, str]],
    signed_only: bool,
    date_from: date | None,
    date_to: date | None,
    enqueue: bool = True,
) -> AdaptationRun:
    """Queue an adaptation of the active model on ``cells`` ([cell image id, final label]); sent
    to the training queue after the commit unless ``enqueue`` is False (the caller runs it).

    Refused (AdaptationError, nothing written) when a class has fewer than the minimum of cells
    or another adaptation is queued or running (the database refuses a second one too).
    """
    counts = adaptation_class_counts(cells)
    if refusal := adaptation_counts_refusal(counts):
        raise AdaptationError(refusal)
    with transaction.atomic():
        if (running := adaptation_run_unfinished()) is not None:
            raise AdaptationError(
                f"Adaptation run {running.pk} is {running.status}: one adaptation at a time."
            )
        base = model_version_active()
        try:
            with transaction.atomic():
                run = AdaptationRun.objects.create(
                    base_model_version=base,
                    started_by=actor,
                    signed_only=signed_only,
                    date_from=date_from,
                    date_to=date_to,
                    cells=[[cell_id, label] for cell_id, label in cells],
                    class_counts=counts,
                )
        except IntegrityError as error:
            raise AdaptationError(
                "Another adaptation was started just now: one adaptation at a time."
            ) from error
        audit_event_record(
            action=AuditAction.ADAPTATION_RUN_STARTED,
            actor=actor,
            actor_username="" if actor else "system",
            target=run,
            after={
                "base_model_version": base.name,
                "class_counts": counts,
                "signed_only": signed_only,
                "date_from": date_from.isoformat() if date_from else None,
                "date_to": date_to.isoformat() if date_to else None,
            },
        )
        if enqueue:
            transaction.on_commit(lambda: adaptation_run_enqueue(run.pk))
    return run


def adaptation_run_enqueue(run_id: int) -> None:
    """Send the run to the training queue; when the broker is down the workers' sweep sends it."""
    from classifier.tasks import adaptation_run_task

    try:
        adaptation_run_task.apply_async(args=[run_id], queue=settings.HEMATOVISION_TRAINING_QUEUE)
    except (KombuOperationalError, redis.RedisError, OSError) as error:
        logger.warning("Broker unreachable, adaptation run %s left for the sweep: %s", run_id, error)


@transaction.atomic
def adaptation_run_cancel(*, actor: User | None, run: AdaptationRun) -> AdaptationRun:
    """A queued run is cancelled at once; a running one stops at its next progress step."""
    run = AdaptationRun.objects.select_for_update().get(pk=run.pk)
    if run.is_finished:
        raise AdaptationError(f"Adaptation run {run.pk} has already finished ({run.get_status_display()}).")
    if run.cancel_requested:
        return run
    AdaptationRun.objects.filter(pk=run.pk).update(cancel_requested=True)
    run.cancel_requested = True
    audit_event_record(
        action=AuditAction.ADAPTATION_RUN_CANCEL_REQUESTED,
        actor=actor,
        actor_username="" if actor else "system",
        target=run,
        before={"status": run.status},
    )
    if run.status == AdaptationRunStatus.QUEUED:
        _run_finish(
            run,
            AdaptationRunStatus.CANCELLED,
            error="Cancelled before it started.",
            actor=actor,
            actor_username="" if actor else "system",
        )
    return run


# --- Running (training worker side) --------------------------------------------------------------------


def _run_transition(run: AdaptationRun, to_status: AdaptationRunStatus, **values) -> bool:
    """Move the run only if it is still in the status we read; False when the sweep or a
    cancellation got there first."""
    if to_status not in ADAPTATION_RUN_TRANSITIONS[run.status]:
        raise RuntimeError(f"A {run.status} adaptation run cannot become {to_status}.")
    moved = AdaptationRun.objects.filter(pk=run.pk, status=run.status).update(status=to_status, **values)
    if moved:
        run.status = to_status
        for name, value in values.items():
            setattr(run, name, value)
    return bool(moved)


def _run_finish(
    run: AdaptationRun,
    status: AdaptationRunStatus,
    *,
    error: str = "",
    result: ModelVersion | None = None,
    actor: User | None = None,
    actor_username: str = WORKER_ACTOR,
) -> bool:
    before = run.status
    values = {"finished_at": timezone.now(), "error": error, "result_model_version": result}
    if status == AdaptationRunStatus.SUCCEEDED:
        values |= {"percent": 100, "stage": "done"}
    if not _run_transition(run, status, **values):
        return False
    audit_event_record(
        action=AuditAction.ADAPTATION_RUN_FINISHED,
        actor=actor,
        actor_username=actor_username,
        target=run,
        before={"status": before},
        after={"status": status.value, "result_model_version": result.name if result else None},
        reason=error,
    )
    return True


def _run_claim(run_id: int) -> AdaptationRun | None:
    """The queued run to work on; None when it is gone, finished or already taken (a redelivered
    message of a run whose worker died: the sweep marks that one failed, it is never resumed)."""
    run = AdaptationRun.objects.select_related("base_model_version", "started_by").filter(pk=run_id).first()
    if run is None or run.status != AdaptationRunStatus.QUEUED:
        return None
    now = timezone.now()
    if not _run_transition(
        run, AdaptationRunStatus.RUNNING, started_at=now, heartbeat_at=now, stage="gather"
    ):
        return None
    return run


def _run_heartbeat(run_id: int) -> AbstractContextManager[None]:
    """Beat from a thread, so a long step (feature rendering, an export) beats too."""
    running = AdaptationRun.objects.filter(pk=run_id, status=AdaptationRunStatus.RUNNING)
    return row_heartbeat(running, f"adaptation-run-{run_id}-heartbeat")


def adaptation_percent(event: Progress) -> int:
    """Where an ml.adapt progress event is on the bar: between the previous stage's end and its own."""
    order = list(STAGE_PERCENT)
    end = STAGE_PERCENT.get(event.stage, 0)
    start = STAGE_PERCENT[order[order.index(event.stage) - 1]] if event.stage in order[1:] else 0
    if event.step is not None and event.total and event.message.startswith("step"):
        return int(start + (end - start) * event.step / event.total)
    return start


def _progress_recorder(run_id: int, echo: Callable[[str], None] | None) -> Callable[[Progress], None]:
    def record(event: Progress) -> None:
        AdaptationRun.objects.filter(pk=run_id, status=AdaptationRunStatus.RUNNING).update(
            stage=event.stage[:16],
            message=event.message[:500],
            percent=adaptation_percent(event),
            heartbeat_at=timezone.now(),
        )
        if echo is not None and not (
            event.stage == "train" and event.message.startswith("step") and event.step % 8
        ):
            echo(f"{event.stage}: {event.message}")

    return record


def _cancel_check(run_id: int) -> Callable[[], bool]:
    """True once the run was cancelled (or marked failed by the sweep); the database is asked at
    most once a second, as ml.adapt asks at every step."""
    last = {"at": 0.0, "stop": False}

    def cancelled() -> bool:
        if not last["stop"] and time.monotonic() - last["at"] >= CANCEL_CHECK_SECONDS:
            last["at"] = time.monotonic()
            last["stop"] = not AdaptationRun.objects.filter(
                pk=run_id, status=AdaptationRunStatus.RUNNING, cancel_requested=False
            ).exists()
        return last["stop"]

    return cancelled


def adaptation_config() -> AdaptConfig:
    """ml's defaults, with HEMATOVISION_ADAPTATION_OPTIONS' overrides applied."""
    options = settings.HEMATOVISION_ADAPTATION_OPTIONS
    known = {field.name for field in fields(AdaptConfig)}
    if set(options) - known:
        raise ValueError(f"HEMATOVISION_ADAPTATION_OPTIONS may only set {sorted(known)}.")
    return AdaptConfig(**options)


def adaptation_work_dir(run_id: int) -> Path:
    """Where the run's copy of the lab's cells lives while it trains (patient data: deleted after)."""
    return Path(settings.HEMATOVISION_ADAPTATION_WORK_ROOT) / f"run-{run_id}"


def adaptation_output_dir(version: str) -> Path:
    return Path(settings.HEMATOVISION_MODELS_ROOT) / ADAPTED_SUBDIRECTORY / version


def adaptation_version(run: AdaptationRun) -> str:
    return f"{run.base_model_version.name}-lab-r{run.pk}"


def cells_export(run: AdaptationRun, target: Path) -> int:
    """Copy the run's cells from storage into ``target/<LABEL>/<slide>__<cell><suffix>``; returns
    how many could not be read from storage (ml.adapt then counts what is left)."""
    images = CellImage.objects.in_bulk([cell_id for cell_id, _ in run.cells])
    missing = 0
    for cell_id, label in run.cells:
        image = images.get(cell_id)
        if image is None:
            missing += 1
            continue
        folder = target / label
        folder.mkdir(parents=True, exist_ok=True)
        suffix = Path(image.file.name).suffix.lower() or ".png"
        try:
            destination = folder / f"{image.slide_id}__{cell_id}{suffix}"
            with default_storage.open(image.file.name, "rb") as source, destination.open("wb") as copy:
                shutil.copyfileobj(source, copy)
        except OSError:
            missing += 1
    return missing


def adaptation_run_execute(*, run_id: int, echo: Callable[[str], None] | None = None) -> AdaptationRun | None:
    """The training worker's whole run: export the cells, adapt, register the candidate."""
    run = _run_claim(run_id)
    if run is None:
        return None
    work_dir = adaptation_work_dir(run.pk)
    try:
        with _run_heartbeat(run.pk):
            _run_adapt(run, work_dir, echo)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    run.refresh_from_db()
    return run


def _run_adapt(run: AdaptationRun, work_dir: Path, echo: Callable[[str], None] | None) -> None:
    record = _progress_recorder(run.pk, echo)
    version = adaptation_version(run)
    out_dir = adaptation_output_dir(version)
    try:
        base_dir = model_directory_verify(
            name=run.base_model_version.name,
            directory=run.base_model_version.directory,
            expected_hashes=run.base_model_version.file_hashes,
        )
        shutil.rmtree(work_dir, ignore_errors=True)
        missing = cells_export(run, work_dir)
        record(
            Progress("gather", f"{len(run.cells) - missing} cells exported, {missing} missing from storage")
        )
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        adapt(
            work_dir,
            out_dir,
            base_dir,
            version,
            progress=record,
            cancelled=_cancel_check(run.pk),
            config=adaptation_config(),
        )
    except AdaptationCancelled:
        _run_finish(run, AdaptationRunStatus.CANCELLED, error="Cancelled by an admin.")
        return
    except (*AdaptationUnusable, ModelLoadError, ValueError) as error:
        _run_finish(run, AdaptationRunStatus.FAILED, error=str(error))
        return
    except Exception as error:
        logger.exception("Adaptation run %s failed", run.pk)
        _run_finish(run, AdaptationRunStatus.FAILED, error=f"{type(error).__name__}: {error}")
        return
    _run_register(run, out_dir)


def _run_register(run: AdaptationRun, out_dir: Path) -> None:
    """The candidate is registered in the transaction that marks the run succeeded: if the sweep
    or a cancellation ended the run meanwhile, nothing is registered and the directory goes."""
    try:
        with transaction.atomic():
            candidate = model_version_register(
                directory=out_dir, actor=run.started_by, candidate=True, parent=run.base_model_version
            )
            if not _run_finish(run, AdaptationRunStatus.SUCCEEDED, result=candidate):
                raise AdaptationError("The run ended before its model could be registered.")
    except (ValidationError, ModelLoadError) as error:
        shutil.rmtree(out_dir, ignore_errors=True)
        run.refresh_from_db()
        if not run.is_finished:
            _run_finish(
                run, AdaptationRunStatus.FAILED, error=" ".join(getattr(error, "messages", [str(error)]))
            )


def adaptation_runs_fail_silent(*, silent_for: timedelta) -> list[int]:
    """Running runs whose worker wrote no heartbeat for ``silent_for`` lost it (killed, out of
    memory, machine gone): marked failed, and the cells' copy and any partial model directory
    removed. A run is never resumed: training restarts from scratch with a new run."""
    failed = []
    seconds = int(silent_for.total_seconds())
    stale = AdaptationRun.objects.select_related("base_model_version").filter(
        status=AdaptationRunStatus.RUNNING, heartbeat_at__lt=timezone.now() - silent_for
    )
    for run in stale:
        with transaction.atomic():
            ended = _run_finish(
                run,
                AdaptationRunStatus.FAILED,
                error=f"The training worker stopped answering (no heartbeat for {seconds} s): it was "
                "killed or lost. Nothing was registered; start a new run.",
                actor_username="sweep",
            )
        if ended:
            adaptation_leftovers_remove(run)
            failed.append(run.pk)
    return failed


def adaptation_leftovers_remove(run: AdaptationRun) -> None:
    """The cells' copy, ml.adapt's partial directory, and a finished directory the worker died
    before registering (never registered afterwards: its run failed)."""
    shutil.rmtree(adaptation_work_dir(run.pk), ignore_errors=True)
    version = adaptation_version(run)
    out_dir = adaptation_output_dir(version)
    for partial in out_dir.parent.glob(f".{out_dir.name}.partial-*"):
        shutil.rmtree(partial, ignore_errors=True)
    if not ModelVersion.objects.filter(name=version).exists():
        shutil.rmtree(out_dir, ignore_errors=True)


def adaptation_runs_queued_before(*, created_before: timedelta) -> list[int]:
    """Queued runs older than ``created_before``: their message may be lost (broker down or restarted)."""
    return list(
        AdaptationRun.objects.filter(
            status=AdaptationRunStatus.QUEUED, created_at__lt=timezone.now() - created_before
        ).values_list("pk", flat=True)
    )

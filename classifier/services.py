"""Registering models, submitting slides and running inference jobs.

Every state change writes its audit event in the same transaction. Jobs are enqueued only after
their transaction commits, and the worker side (``inference_job_run``) is safe to run twice for
the same job: it claims the job with a conditional update and writes predictions under a unique
(cell image, model version) constraint.
"""

import logging
import threading
import time
import uuid
from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connections, transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import User
from accounts.services import ReauthenticationFailed, user_reauthenticate
from audit.models import AuditAction
from audit.services import audit_event_record
from cases.models import CellImage, FieldImage, Slide, SlideStatus
from cases.services import (
    FieldCellCrop,
    field_cells_store,
    field_location_failed,
    slide_ensure_unlocked,
    slide_status_change,
)
from cases.uploads import UploadLimits, image_validate
from classifier.adapter import (
    CellPrediction,
    ImageDecodeError,
    ModelLoadError,
    crops_predict,
    default_model_directory,
    field_cells_locate,
    model_card_read,
    model_directory_digest,
    model_directory_hashes,
    model_directory_store,
    predictor_for,
    thresholds_from_card,
    validated_domains,
)
from classifier.broker_recovery import task_send_or_defer
from classifier.domain import slide_domain_assess
from classifier.models import (
    INFERENCE_JOB_FINISHED,
    INFERENCE_JOB_TRANSITIONS,
    PROBABILITY_FIELDS,
    CellClass,
    InferenceJob,
    InferenceJobStatus,
    ModelVersion,
    Prediction,
    PredictionFailure,
    QuickClassification,
    QuickClassificationStatus,
)
from classifier.selectors import inference_job_fields

logger = logging.getLogger(__name__)

# Shown as the actor of events written by a worker (no user is logged in there).
WORKER_ACTOR = "inference-worker"
# Quick-classify images and results are deleted after this long (they are not clinical records).
QUICK_CLASSIFICATION_RETENTION_SECONDS = 24 * 60 * 60
# Slides whose new uploads are classified straight away.
SLIDE_STATUSES_CLASSIFYING_UPLOADS = frozenset(
    {SlideStatus.SUBMITTED, SlideStatus.READY_FOR_REVIEW, SlideStatus.IN_REVIEW}
)


class InferenceJobTransitionError(RuntimeError):
    """A job status change outside ``INFERENCE_JOB_TRANSITIONS``: a bug, never user input."""


# --- Model registry ------------------------------------------------------------------------------------


@transaction.atomic
def model_version_register(
    *,
    directory: Path,
    actor: User | None = None,
    activate: bool = False,
    candidate: bool = False,
    parent: ModelVersion | None = None,
) -> ModelVersion:
    """Record a model directory and the sha256 of each of its files; refuse an unusable one.

    A ``candidate`` (an adapted model) is never activated here, even when nothing is active.
    """
    directory = Path(directory)
    card = model_card_read(directory)
    if list(card.get("classes", [])) != list(CellClass.values):
        raise ValidationError(f"The model in {directory} must predict exactly {CellClass.values}.")
    file_hashes = model_directory_hashes(directory)
    domain = thresholds_from_card(card)
    model_version = ModelVersion(
        name=str(card["version"]),
        directory=model_directory_store(directory),
        sha256=model_directory_digest(file_hashes),
        file_hashes=file_hashes,
        review_threshold=float(card["review_threshold"]),
        metrics=card.get("metrics", {}),
        domain_cell_threshold=domain.cell if domain else None,
        domain_slide_threshold=domain.slide if domain else None,
        validated_domains=validated_domains(card),
        registered_by=actor,
        is_candidate=candidate,
        parent=parent,
    )
    model_version.full_clean()
    model_version.save()
    audit_event_record(
        action=AuditAction.MODEL_VERSION_REGISTERED,
        actor=actor,
        actor_username="" if actor else "system",
        target=model_version,
        after={
            "name": model_version.name,
            "directory": model_version.directory,
            "sha256": model_version.sha256,
            **({"candidate": True, "parent": parent.name if parent else None} if candidate else {}),
        },
    )
    if candidate:
        return model_version
    if activate or not ModelVersion.objects.filter(is_active=True).exists():
        model_version_activate(actor=actor, model_version=model_version)
    return model_version


def model_version_register_default(*, actor: User | None = None) -> ModelVersion | None:
    """Register the default model under ml/models once; None when it is not there (yet)."""
    directory = default_model_directory()
    if not directory.is_dir():
        logger.warning("No default model at %s: nothing registered.", directory)
        return None
    name = str(model_card_read(directory)["version"])
    existing = ModelVersion.objects.filter(name=name).first()
    if existing is None:
        return model_version_register(directory=directory, actor=actor)
    if model_directory_digest(model_directory_hashes(directory)) != existing.sha256:
        # Never silently serve different weights under a recorded name: jobs with it will fail
        # with the checksum error until the new model gets a version of its own.
        logger.error("The default model %s changed since it was registered; give it a new version.", name)
    return existing


class ModelActivationRefused(ValidationError):
    """The password re-entered to activate a model version is wrong (or the account is locked)."""


@transaction.atomic
def model_version_activate(*, actor: User | None, model_version: ModelVersion) -> ModelVersion:
    """Make this version serve every new job; jobs already queued keep the version they were given.

    Activating a version registered before the active one is a roll-back, audited as such. A
    candidate activated stops being a candidate.
    """
    previous = ModelVersion.objects.select_for_update().filter(is_active=True).first()
    if previous is not None and previous.pk == model_version.pk:
        return model_version
    ModelVersion.objects.filter(is_active=True).update(is_active=False)
    ModelVersion.objects.filter(pk=model_version.pk).update(is_active=True, is_candidate=False)
    model_version.is_active = True
    model_version.is_candidate = False
    rollback = previous is not None and model_version.registered_at < previous.registered_at
    audit_event_record(
        action=AuditAction.MODEL_VERSION_ROLLED_BACK if rollback else AuditAction.MODEL_VERSION_ACTIVATED,
        actor=actor,
        actor_username="" if actor else "system",
        target=model_version,
        before={"active": previous.name if previous else None},
        after={"active": model_version.name},
    )
    return model_version


def model_version_activate_confirmed(
    *, actor: User, model_version: ModelVersion, password: str, request: HttpRequest
) -> ModelVersion:
    """Activate (or roll back to) a version after the admin re-entered their password, as for a
    sign-off: a wrong password is refused, audited in its own transaction and counted by the
    login lockout."""
    if not actor.has_perm("classifier.change_modelversion"):
        raise PermissionError("Only an admin activates a model version.")
    try:
        user_reauthenticate(user=actor, password=password, request=request)
    except ReauthenticationFailed as error:
        locked = bool(getattr(request, "axes_locked_out", False))
        audit_event_record(
            action=AuditAction.MODEL_VERSION_ACTIVATE_REFUSED,
            actor=actor,
            target=model_version,
            after={
                "model_version": model_version.name,
                "cause": "account locked out" if locked else "wrong password",
            },
        )
        raise ModelActivationRefused(
            f"{' '.join(error.messages)}; {model_version.name} was not activated."
        ) from error
    return model_version_activate(actor=actor, model_version=model_version)


def model_version_active() -> ModelVersion:
    model_version = ModelVersion.objects.filter(is_active=True).first()
    if model_version is None:
        raise ValidationError("No model version is active: an admin must register or activate one.")
    return model_version


# --- Submitting slides and creating jobs --------------------------------------------------------------


@transaction.atomic
def slide_submit(*, actor: User, slide: Slide) -> InferenceJob:
    """Draft → submitted, and a job classifying every cell image of the slide with the active model."""
    model_version = model_version_active()
    if not slide.cell_images.exists() and not slide.field_images.exists():
        raise ValidationError("Upload at least one cell or field image before submitting the slide.")
    slide = slide_status_change(actor=actor, slide=slide, to_status=SlideStatus.SUBMITTED)
    job = inference_job_create(actor=actor, slide=slide, model_version=model_version)
    if job is None:
        raise ValidationError("Every cell image of this slide is already classified by the active model.")
    return job


def _images_pending(slide: Slide, model_version: ModelVersion) -> QuerySet[CellImage]:
    """Cell images of the slide without an outcome (prediction or failure) from this model version."""
    return (
        CellImage.objects.filter(slide=slide)
        .exclude(predictions__model_version=model_version)
        .exclude(prediction_failures__model_version=model_version)
    )


@transaction.atomic
def inference_job_create(
    *,
    actor: User,
    slide: Slide,
    model_version: ModelVersion | None = None,
    retry_cell_images: Collection[int] = (),
) -> InferenceJob | None:
    """A job for the slide's images not yet classified by (nor queued for) the model version.

    With another model version than before, this re-runs the slide: new predictions are stored
    beside the old ones. ``retry_cell_images`` (a pathologist's retry) are classified again even
    where this model version failed on them before; other failed images are left alone. None when
    there is nothing to classify.
    """
    # A signed slide's result must not shift under it: re-runs wait for an amendment.
    slide_ensure_unlocked(Slide.objects.select_for_update().get(pk=slide.pk))
    model_version = model_version or model_version_active()
    if retry_cell_images:
        candidates = CellImage.objects.filter(slide=slide, pk__in=retry_cell_images).exclude(
            predictions__model_version=model_version
        )
    else:
        candidates = _images_pending(slide, model_version)
    images = list(
        candidates.exclude(
            inference_jobs__model_version=model_version,
            inference_jobs__status__in=[InferenceJobStatus.QUEUED, InferenceJobStatus.RUNNING],
        ).values_list("pk", flat=True)
    )
    fields = [] if retry_cell_images else _fields_pending(slide)
    if not images and not fields:
        return None
    job = InferenceJob.objects.create(
        slide=slide, model_version=model_version, requested_by=actor, total=len(images)
    )
    job.cell_images.add(*images)
    job.field_images.add(*fields)
    audit_event_record(
        action=AuditAction.INFERENCE_JOB_CREATED,
        actor=actor,
        target=job,
        after={
            "slide_id": slide.pk,
            "model_version": model_version.name,
            "total": job.total,
            **({"fields": len(fields)} if fields else {}),
            **({"retry": True} if retry_cell_images else {}),
        },
    )
    transaction.on_commit(lambda: _inference_job_enqueue(job.pk))
    return job


def _fields_pending(slide: Slide) -> list[int]:
    """The slide's fields whose cells are not located yet, nor being located by a job now."""
    return list(
        FieldImage.objects.filter(slide=slide, located_at=None)
        .exclude(inference_jobs__status__in=[InferenceJobStatus.QUEUED, InferenceJobStatus.RUNNING])
        .values_list("pk", flat=True)
    )


def slide_new_images_classify(*, actor: User, slide: Slide) -> InferenceJob | None:
    """Called after uploads: a submitted slide's new images are classified without another submit."""
    slide.refresh_from_db(fields=["status"])
    if slide.status not in SLIDE_STATUSES_CLASSIFYING_UPLOADS:
        return None
    if not ModelVersion.objects.filter(is_active=True).exists():
        # The upload itself succeeded; the images wait for a model and a re-run.
        logger.warning("No active model: new images of slide %s are not classified.", slide.pk)
        return None
    return inference_job_create(actor=actor, slide=slide)


def _inference_job_enqueue(job_id: int) -> None:
    from classifier.tasks import inference_job_run_task

    task_send_or_defer(inference_job_run_task, job_id)


# --- Running a job (worker side) -------------------------------------------------------------------------


def _job_transition(job: InferenceJob, to_status: InferenceJobStatus, **fields) -> bool:
    """Move the job only if it is still in the status we read; False when another run got there first."""
    if to_status not in INFERENCE_JOB_TRANSITIONS[job.status]:
        raise InferenceJobTransitionError(f"A {job.status} job cannot become {to_status}.")
    moved = InferenceJob.objects.filter(pk=job.pk, status=job.status).update(status=to_status, **fields)
    if moved:
        job.status = to_status
        for name, value in fields.items():
            setattr(job, name, value)
    return bool(moved)


@transaction.atomic
def _job_claim(job_id: int) -> InferenceJob | None:
    """The job to work on, or None when it is gone or finished.

    A running job is taken over: its worker died and Celery redelivered the message. A duplicate
    delivery racing a live worker is harmless too, as outcomes are written idempotently.
    """
    job = InferenceJob.objects.select_related("model_version", "slide").filter(pk=job_id).first()
    if job is None:
        logger.warning("Inference job %s no longer exists; nothing to do.", job_id)
        return None
    if job.is_finished:
        return None
    attempts = job.attempts + 1
    if job.status == InferenceJobStatus.QUEUED:
        claimed = _job_transition(
            job,
            InferenceJobStatus.RUNNING,
            started_at=timezone.now(),
            heartbeat_at=timezone.now(),
            attempts=attempts,
        )
        if not claimed:
            return _job_claim(job_id)
        audit_event_record(
            action=AuditAction.INFERENCE_JOB_STARTED,
            actor=None,
            actor_username=WORKER_ACTOR,
            target=job,
            before={"status": InferenceJobStatus.QUEUED.value},
            after={"status": InferenceJobStatus.RUNNING.value, "model_version": job.model_version.name},
        )
    else:
        InferenceJob.objects.filter(pk=job.pk).update(attempts=attempts, heartbeat_at=timezone.now())
        job.attempts = attempts
        logger.info("Inference job %s redelivered (attempt %s): resuming.", job.pk, attempts)
    return job


@contextmanager
def row_heartbeat(rows: QuerySet, name: str) -> Iterator[None]:
    """Stamp ``heartbeat_at`` on ``rows`` every ``HEMATOVISION_JOB_HEARTBEAT_SECONDS`` from a thread
    while the block runs, so a slow step (a model load, a long batch, an export) beats too."""
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(settings.HEMATOVISION_JOB_HEARTBEAT_SECONDS):
                rows.update(heartbeat_at=timezone.now())
        finally:
            connections.close_all()  # this thread's own connection

    thread = threading.Thread(target=beat, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def job_heartbeat(job_id: int) -> AbstractContextManager[None]:
    """Beat while the job runs (batches beat too): the sweep resends a job only after
    ``HEMATOVISION_JOB_SILENT_SECONDS`` (three beats) of silence, so a killed worker's job resumes
    within a minute and a live one is never taken over."""
    running = InferenceJob.objects.filter(pk=job_id, status=InferenceJobStatus.RUNNING)
    return row_heartbeat(running, f"inference-job-{job_id}-heartbeat")


def inference_job_run(*, job_id: int) -> InferenceJob | None:
    """The worker's whole job: classify pending images batch by batch, then record the outcome."""
    job = _job_claim(job_id)
    if job is None:
        return None
    if job.attempts > settings.HEMATOVISION_INFERENCE_MAX_ATTEMPTS:
        # Something in this job kills workers (e.g. out of memory); redelivering it for ever would
        # starve every other slide.
        return _job_finish(job, error=f"Abandoned after {job.attempts - 1} attempts ended without a result.")
    with job_heartbeat(job.pk):
        return _job_classify(job)


def _job_classify(job: InferenceJob) -> InferenceJob:
    try:
        predictor = predictor_for(job.model_version)
    except ModelLoadError as error:
        logger.error("Inference job %s failed: %s", job.pk, error)
        return _job_finish(job, error=str(error))
    for field_image in job.field_images.filter(located_at=None).order_by("pk"):
        _field_locate(job, predictor, field_image)
    batch_size = settings.HEMATOVISION_INFERENCE_BATCH_SIZE
    pending = list(
        job.cell_images.exclude(predictions__model_version=job.model_version)
        .exclude(prediction_failures__job=job)
        .order_by("pk")
    )
    for start in range(0, len(pending), batch_size):
        _batch_classify(job, predictor, pending[start : start + batch_size])
    return _job_finish(job)


def _field_locate(job: InferenceJob, predictor, field_image: FieldImage) -> None:  # noqa: ANN001
    """Locate a field's white cells and make them this job's cells, in one transaction (a
    redelivered job finds the field located and adds the same cells again, harmlessly)."""
    try:
        crops, locator = field_cells_locate(predictor, _image_read(field_image))
    except (FileNotFoundError, OSError, ImageDecodeError) as error:
        reason = getattr(error, "reason", None) or str(error)
        logger.warning("Field %s of job %s could not be located: %s", field_image.pk, job.pk, reason)
        field_location_failed(field_image=field_image, reason=f"field image could not be read: {reason}")
        return
    rows = [
        FieldCellCrop(
            box_x=crop.box.x_min,
            box_y=crop.box.y_min,
            box_w=crop.box.width,
            box_h=crop.box.height,
            score=crop.box.score,
            png=crop.png,
            crop_size=crop.size,
        )
        for crop in crops
    ]
    with transaction.atomic():
        cells, _ = field_cells_store(
            field_image=field_image, crops=rows, locator=locator, actor_username=WORKER_ACTOR
        )
        job.cell_images.add(*cells)
        job.total = job.cell_images.count()
        InferenceJob.objects.filter(pk=job.pk).update(total=job.total, heartbeat_at=timezone.now())


@dataclass(frozen=True)
class _Outcome:
    cell_image: CellImage
    prediction: CellPrediction | None = None
    failure: str = ""


def _image_read(image: CellImage | FieldImage) -> bytes:
    # Through the storage API, so workers on other machines read the same (e.g. S3) store.
    with default_storage.open(image.file.name, "rb") as handle:
        return handle.read()


def _batch_outcomes(predictor, images: Sequence[CellImage]) -> list[_Outcome]:  # noqa: ANN001
    readable: list[tuple[CellImage, bytes]] = []
    outcomes: list[_Outcome] = []
    for cell_image in images:
        try:
            readable.append((cell_image, _image_read(cell_image)))
        except (FileNotFoundError, OSError) as error:
            outcomes.append(_Outcome(cell_image, failure=f"image file missing from storage: {error}"))
    # A field's cell is stored as the model's crop already: localising a cell in it again would
    # crop the crop.
    uploaded = [(cell, data) for cell, data in readable if cell.field_image_id is None]
    cropped = [(cell, data) for cell, data in readable if cell.field_image_id is not None]
    results = predictor.predict_each([data for _, data in uploaded]) + crops_predict(
        predictor, [data for _, data in cropped]
    )
    for (cell_image, _), result in zip(uploaded + cropped, results, strict=True):
        if isinstance(result, ImageDecodeError):
            outcomes.append(_Outcome(cell_image, failure=f"image could not be decoded: {result.reason}"))
        else:
            outcomes.append(_Outcome(cell_image, prediction=result))
    return outcomes


def _batch_classify(job: InferenceJob, predictor, images: Sequence[CellImage]) -> None:  # noqa: ANN001
    started = time.perf_counter()
    outcomes = _batch_outcomes(predictor, images)
    milliseconds_each = (time.perf_counter() - started) * 1000 / max(len(images), 1)
    with transaction.atomic():
        Prediction.objects.bulk_create(
            [
                _prediction_row(job, o.cell_image, o.prediction, milliseconds_each)
                for o in outcomes
                if o.prediction
            ],
            ignore_conflicts=True,
        )
        PredictionFailure.objects.bulk_create(
            [
                PredictionFailure(
                    cell_image=o.cell_image, model_version=job.model_version, job=job, reason=o.failure
                )
                for o in outcomes
                if o.failure
            ],
            ignore_conflicts=True,
        )
        _job_progress_update(job)


def _prediction_row(
    job: InferenceJob, cell_image: CellImage, prediction: CellPrediction, milliseconds: float
) -> Prediction:
    probabilities = {field: prediction.probabilities[label] for label, field in PROBABILITY_FIELDS.items()}
    return Prediction(
        cell_image=cell_image,
        model_version=job.model_version,
        job=job,
        label=prediction.label,
        confidence=prediction.confidence,
        domain_score=prediction.domain_score,
        in_domain=prediction.in_domain,
        review_threshold=prediction.review_threshold,
        inference_ms=milliseconds,
        **probabilities,
    )


def _job_progress_update(job: InferenceJob) -> None:
    """Counts from the rows themselves, so a redelivered or duplicated run never double-counts."""
    images = job.cell_images.all()
    job.done = Prediction.objects.filter(model_version=job.model_version, cell_image__in=images).count()
    # This job's own failures: a retried cell's earlier failure belongs to the job that had it.
    job.failed = PredictionFailure.objects.filter(job=job).count()
    InferenceJob.objects.filter(pk=job.pk).update(
        done=job.done, failed=job.failed, heartbeat_at=timezone.now()
    )


@transaction.atomic
def _job_finish(job: InferenceJob, *, error: str = "") -> InferenceJob:
    _job_progress_update(job)
    fields = _job_fields_summary(job)
    # A field that could not be read fails like a cell that could not be classified.
    failed = job.failed + fields.get("fields_failed", 0)
    units = job.total + fields.get("fields_failed", 0)
    if error or (units and failed == units):
        status = InferenceJobStatus.FAILED
    elif failed:
        status = InferenceJobStatus.PARTIALLY_FAILED
    else:
        status = InferenceJobStatus.SUCCEEDED
    job.refresh_from_db(fields=["status"])
    if job.is_finished or not _job_transition(job, status, finished_at=timezone.now(), error=error):
        return job
    audit_event_record(
        action=AuditAction.INFERENCE_JOB_FINISHED,
        actor=None,
        actor_username=WORKER_ACTOR,
        target=job,
        before={"status": InferenceJobStatus.RUNNING.value},
        after={
            "status": status.value,
            "total": job.total,
            "done": job.done,
            "failed": job.failed,
            **fields,
        },
        reason=error,
    )
    if job.done:
        slide_domain_assess(job=job, actor_username=WORKER_ACTOR)
    _slide_ready_for_review(job)
    return job


def _job_fields_summary(job: InferenceJob) -> dict[str, int]:
    """What the job found on its whole fields, for its audit event ({} for a job of cells only)."""
    fields = inference_job_fields(job)
    return fields if fields["fields_total"] else {}


def _slide_ready_for_review(job: InferenceJob) -> None:
    """When the last job of a submitted slide finishes, the slide waits for a pathologist: ready for
    review, whatever the outcome (cells the model could not read are retried or excluded there)."""
    slide = Slide.objects.select_for_update().get(pk=job.slide_id)
    if slide.status != SlideStatus.SUBMITTED:
        return  # already in review (a pathologist started early), or reopened and signed meanwhile
    if InferenceJob.objects.filter(slide=slide).exclude(status__in=INFERENCE_JOB_FINISHED).exists():
        return
    slide_status_change(
        actor=None, actor_username=WORKER_ACTOR, slide=slide, to_status=SlideStatus.READY_FOR_REVIEW
    )


def inference_job_abandon(*, job_id: int, error: str) -> None:
    """The task gave up (retries exhausted): the job must not stay 'running' for ever."""
    job = InferenceJob.objects.filter(pk=job_id).first()
    if job is None or job.is_finished:
        return
    if job.status == InferenceJobStatus.QUEUED:
        with transaction.atomic():
            _job_transition(job, InferenceJobStatus.RUNNING, started_at=timezone.now())
    _job_finish(job, error=error)


# --- Quick classify (outside clinical records) --------------------------------------------------------------


def quick_classification_create(*, actor: User, data: bytes, original_filename: str) -> QuickClassification:
    """Store one image outside any patient record and queue it for the active model.

    Raises ``cases.uploads.UploadRejected`` for anything but a decodable image; leaves no file
    behind when the row cannot be written.
    """
    image = image_validate(
        data=data, original_filename=original_filename, limits=UploadLimits.from_settings()
    )
    quick = QuickClassification(
        original_filename=image.original_filename, requested_by=actor, model_version=model_version_active()
    )
    try:
        with transaction.atomic():
            quick.image.save(f"{uuid.uuid4().hex}.{image.extension}", ContentFile(image.data), save=False)
            quick.save()
            transaction.on_commit(lambda: _quick_classification_enqueue(quick.pk))
    except BaseException:
        if quick.image.name:
            quick.image.storage.delete(quick.image.name)
        raise
    return quick


def _quick_classification_enqueue(quick_id: int) -> None:
    from classifier.tasks import quick_classification_run_task

    task_send_or_defer(quick_classification_run_task, quick_id)


def quick_classification_run(*, quick_classification_id: int) -> QuickClassification | None:
    claimed = QuickClassification.objects.filter(
        pk=quick_classification_id, status=QuickClassificationStatus.QUEUED
    ).update(status=QuickClassificationStatus.RUNNING)
    quick = (
        QuickClassification.objects.select_related("model_version").filter(pk=quick_classification_id).first()
    )
    if quick is None or (not claimed and quick.status != QuickClassificationStatus.RUNNING):
        return quick
    try:
        with default_storage.open(quick.image.name, "rb") as handle:
            result = predictor_for(quick.model_version).predict_each([handle.read()])[0]
    except (ModelLoadError, OSError) as error:
        result = error
    return _quick_classification_finish(quick, result)


def _quick_classification_finish(quick: QuickClassification, result: object) -> QuickClassification:
    fields: dict[str, object] = {"finished_at": timezone.now()}
    if isinstance(result, CellPrediction):
        fields |= {
            "status": QuickClassificationStatus.SUCCEEDED,
            "label": result.label,
            "probabilities": result.probabilities,
            "confidence": result.confidence,
            "domain_score": result.domain_score,
            "in_domain": result.in_domain,
            "review_threshold": result.review_threshold,
        }
    else:
        fields |= {"status": QuickClassificationStatus.FAILED, "error": str(result)}
    QuickClassification.objects.filter(pk=quick.pk, status=QuickClassificationStatus.RUNNING).update(**fields)
    quick.refresh_from_db()
    return quick


def quick_classifications_purge(*, older_than_seconds: int) -> int:
    """Delete quick classifications (rows and files) older than the given age; returns how many."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    stale = QuickClassification.objects.filter(created_at__lt=cutoff)
    count = 0
    for quick in stale.iterator():
        quick.image.storage.delete(quick.image.name)
        quick.delete()
        count += 1
    return count

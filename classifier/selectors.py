"""Reading jobs, predictions and model versions. The ``*_visible_queryset`` helpers decide what a
user may see (on top of the slide access rules of ``cases.selectors``); rows outside are 404."""

from dataclasses import dataclass
from typing import Any

from celery import current_app as celery_app
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.cache import cache
from django.db.models import BooleanField, Count, ExpressionWrapper, Prefetch, Q, QuerySet
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from audit.models import AuditAction, AuditEvent
from cases.models import CellImage, Slide
from cases.selectors import cell_image_visible_queryset, slide_visible_queryset
from classifier.adapter import ModelLoadError, model_card_read, model_directory_resolve
from classifier.domain import prediction_auto_acceptable_q, slide_auto_acceptable_ids
from classifier.models import (
    AdaptationRun,
    CellClass,
    InferenceJob,
    ModelVersion,
    Prediction,
    PredictionFailure,
    QuickClassification,
)

_WORKERS_CACHE_KEY = "classifier:workers-available"
_WORKERS_CACHE_SECONDS = 5


def inference_job_visible_queryset(user: AbstractBaseUser) -> QuerySet[InferenceJob]:
    if not user.is_authenticated or not user.has_perm("classifier.view_inferencejob"):
        return InferenceJob.objects.none()
    return InferenceJob.objects.filter(slide__in=slide_visible_queryset(user)).select_related(
        "model_version", "requested_by", "slide"
    )


def prediction_visible_queryset(user: AbstractBaseUser) -> QuerySet[Prediction]:
    if not user.is_authenticated or not user.has_perm("classifier.view_prediction"):
        return Prediction.objects.none()
    return Prediction.objects.filter(cell_image__in=cell_image_visible_queryset(user)).select_related(
        "model_version", "cell_image"
    )


def model_version_list() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.select_related("registered_by").order_by("-is_active", "-registered_at")


def model_version_names() -> dict[str, int]:
    """Every registered version's primary key by name, to link the versions a card names."""
    return dict(ModelVersion.objects.values_list("name", "pk"))


def model_version_history(model_version: ModelVersion) -> list[AuditEvent]:
    """The audit events of this version (registered, activated, ...) and those of the versions
    that replaced it while it was active, oldest first. Shown to everyone who may see the Models
    page: they say who did what to a model, nothing about patients."""
    own = Q(object_type=ModelVersion._meta.label_lower, object_id=str(model_version.pk))
    replaced = Q(object_type=ModelVersion._meta.label_lower, before__active=model_version.name)
    return list(AuditEvent.objects.filter(own | replaced).select_related("actor").order_by("id"))


def model_version_activations() -> dict[int, AuditEvent]:
    """The latest activation event of each version that was ever activated, by primary key."""
    events = AuditEvent.objects.filter(
        object_type=ModelVersion._meta.label_lower, action=AuditAction.MODEL_VERSION_ACTIVATED
    ).order_by("id")
    return {int(event.object_id): event for event in events if event.object_id.isdigit()}


def metrics_flatten(metrics: dict, prefix: str = "") -> list[tuple[str, str]]:
    """The model card's (nested) metrics as ("set · metric", "0.953") lines, numbers only."""
    lines = []
    for name, value in metrics.items():
        label = f"{prefix} · {name}" if prefix else str(name)
        if isinstance(value, dict):
            lines += metrics_flatten(value, label)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            lines.append((label, f"{value:.3f}" if isinstance(value, float) else str(value)))
    return lines


def quick_classification_visible_queryset(user: AbstractBaseUser) -> QuerySet[QuickClassification]:
    """Quick classifications are private to whoever uploaded the image."""
    if not user.is_authenticated or not user.has_perm("classifier.add_quickclassification"):
        return QuickClassification.objects.none()
    return QuickClassification.objects.filter(requested_by=user).select_related("model_version")


def slide_predictions(*, user: AbstractBaseUser, slide: Slide, model_version: ModelVersion | None = None):  # noqa: ANN201
    """The slide's predictions, each annotated ``auto_acceptable`` (``classifier.domain``)."""
    predictions = prediction_visible_queryset(user).filter(cell_image__slide=slide)
    if model_version is not None:
        predictions = predictions.filter(model_version=model_version)
    predictions = predictions.annotate(
        auto_acceptable=ExpressionWrapper(prediction_auto_acceptable_q(), output_field=BooleanField())
    )
    return predictions.order_by("cell_image_id", "model_version__registered_at")


def slide_latest_job(*, user: AbstractBaseUser, slide: Slide) -> InferenceJob | None:
    return inference_job_visible_queryset(user).filter(slide=slide).order_by("-created_at", "-id").first()


@dataclass(frozen=True)
class CellCard:
    """One thumbnail of the slide page: the image and what the model made of it."""

    cell_image: CellImage
    prediction: Prediction | None
    failure: PredictionFailure | None
    # Not auto-acceptable (ml.domain.decide_auto_accept): below the review threshold, or the cell
    # or its slide outside the model's validated domain.
    flagged: bool


def slide_cell_cards(*, user: AbstractBaseUser, slide: Slide, model_version: ModelVersion) -> list[CellCard]:
    """Every visible cell image of the slide with its outcome from ``model_version`` (a fixed
    number of queries, whatever the number of cells)."""
    if not user.has_perm("classifier.view_prediction"):
        return []
    images = (
        cell_image_visible_queryset(user)
        .filter(slide=slide)
        .order_by("id")
        .prefetch_related(
            Prefetch(
                "predictions",
                Prediction.objects.filter(model_version=model_version).select_related("model_version"),
                to_attr="outcomes",
            ),
            Prefetch(
                "prediction_failures",
                PredictionFailure.objects.filter(model_version=model_version).order_by("-id"),
                to_attr="failures",
            ),
        )
    )
    acceptable = slide_auto_acceptable_ids(slide=slide)
    cards = []
    for image in images:
        prediction = image.outcomes[0] if image.outcomes else None
        flagged = prediction is not None and prediction.pk not in acceptable
        cards.append(CellCard(image, prediction, image.failures[0] if image.failures else None, flagged))
    return cards


def slide_classification(
    *, user: AbstractBaseUser, slide: Slide
) -> tuple[InferenceJob | None, ModelVersion | None]:
    """The slide's latest job and the model version its cells are shown with (the active one
    before any job)."""
    job = slide_latest_job(user=user, slide=slide)
    return job, job.model_version if job else ModelVersion.objects.filter(is_active=True).first()


def inference_job_progress(job: InferenceJob) -> dict[str, Any]:
    """What the progress bar needs; elapsed time from the server's clock, so no clock skew."""
    end = job.finished_at or timezone.now()
    return {
        "id": job.pk,
        "status": job.status,
        "status_label": job.get_status_display(),
        "finished": job.is_finished,
        "total": job.total,
        "done": job.done,
        "failed": job.failed,
        "elapsed_seconds": round((end - job.started_at).total_seconds(), 1) if job.started_at else 0.0,
        "error": job.error,
        **inference_job_fields(job),
    }


def inference_job_fields(job: InferenceJob) -> dict[str, int]:
    """The job's whole fields: how many, located so far, located without any white cell, and
    unreadable (one query)."""
    counts = job.field_images.aggregate(
        fields_total=Count("pk"),
        fields_located=Count("pk", filter=Q(located_at__isnull=False)),
        fields_empty=Count("pk", filter=Q(located_count=0)),
        fields_failed=Count("pk", filter=Q(located_at__isnull=True) & ~Q(location_error="")),
    )
    return {name: value or 0 for name, value in counts.items()}


def workers_available() -> bool:
    """Whether any Celery worker answers a ping; remembered a few seconds so polling pages do not
    broadcast every second."""
    cached = cache.get(_WORKERS_CACHE_KEY)
    if cached is not None:
        return cached
    try:
        available = bool(celery_app.control.ping(timeout=1.0, limit=1))
    except (BrokerError, OSError):
        available = False
    cache.set(_WORKERS_CACHE_KEY, available, _WORKERS_CACHE_SECONDS)
    return available


# --- Adaptation runs and candidates --------------------------------------------------------------------

# The validation sets an adapted model's card records, parent and adapted model side by side.
COMPARISON_SETS = {
    "lab_holdout": "This lab's held-out verified cells (never trained on)",
    "val_kaggle": "Source validation: Kaggle blood-cells (held-out groups)",
    "val_pbc": "Source validation: PBC (CellaVision DM96)",
}


def adaptation_run_visible_queryset(user: AbstractBaseUser) -> QuerySet[AdaptationRun]:
    if not user.is_authenticated or not user.has_perm("classifier.view_adaptationrun"):
        return AdaptationRun.objects.none()
    return AdaptationRun.objects.select_related("base_model_version", "result_model_version", "started_by")


def adaptation_run_progress(run: AdaptationRun) -> dict[str, Any]:
    """What the adaptation page polls: status, stage, percent, the last progress message."""
    result = run.result_model_version
    return {
        "id": run.pk,
        "status": run.status,
        "status_label": run.get_status_display(),
        "stage": run.stage,
        "message": run.message,
        "percent": run.percent,
        "cancel_requested": run.cancel_requested,
        "finished": run.is_finished,
        "error": run.error,
        "class_counts": run.class_counts,
        "result_model_version": result.name if result else None,
        "result_model_version_id": result.pk if result else None,
    }


def _figures(entry: dict) -> dict[str, Any]:
    auto = entry.get("auto_accept") or {}
    cells = auto.get("cells") or 0
    return {
        "n": entry.get("n"),
        "accuracy": entry.get("accuracy"),
        "macro_f1": entry.get("macro_f1"),
        "auto_share": auto.get("accepted", 0) / cells if cells else None,
        "auto_accepted": auto.get("accepted"),
        "auto_wrong": auto.get("accepted_wrong"),
        "per_class_f1": {name: scores.get("f1") for name, scores in (entry.get("per_class") or {}).items()},
    }


def model_version_adaptation_facts(model_version: ModelVersion) -> dict[str, Any] | None:
    """How an adapted version was made, from its card: cells trained on and held out, how the
    hold-out was drawn, images skipped, whether the lab joined the domain. None for another model
    or an unreadable card (the card is read, the model is not loaded)."""
    try:
        card = model_card_read(model_directory_resolve(model_version.directory))
    except ModelLoadError:
        return None
    adaptation = card.get("adaptation")
    if not isinstance(adaptation, dict):
        return None
    domain = card.get("domain") or {}
    return {
        "derivation": card.get("derivation", ""),
        "train_counts": [
            (name, adaptation.get("train_counts", {}).get(name, 0)) for name in CellClass.values
        ],
        "holdout_counts": [
            (name, adaptation.get("holdout_counts", {}).get(name, 0)) for name in CellClass.values
        ],
        "holdout": adaptation.get("holdout", ""),
        "skipped": len(adaptation.get("skipped") or []),
        "lab_in_domain": domain.get("lab_in_domain"),
        "lab_rule": domain.get("lab_rule", ""),
        "fingerprint": adaptation.get("lab_fingerprint_sha256", ""),
        "wall_time_s": adaptation.get("wall_time_s"),
    }


def model_version_comparison(model_version: ModelVersion) -> list[dict[str, Any]]:
    """Parent vs this (adapted) version on each validation set its card records, as ml.adapt
    measured them when it was made; empty for a model that was not adapted."""
    validation = (model_version.metrics or {}).get("validation") or {}
    rows = []
    for key, title in COMPARISON_SETS.items():
        pair = validation.get(key)
        if not isinstance(pair, dict) or "adapted" not in pair or "parent" not in pair:
            continue
        parent, candidate = _figures(pair["parent"]), _figures(pair["adapted"])
        classes = [name for name in CellClass.values if name in candidate["per_class_f1"]]
        rows.append(
            {
                "key": key,
                "title": title,
                "parent": parent,
                "candidate": candidate,
                "per_class": [
                    (name, parent["per_class_f1"].get(name), candidate["per_class_f1"].get(name))
                    for name in classes
                ],
            }
        )
    return rows

"""Grad-CAM overlays: requested from the review screen, computed once by a worker, stored.

Only Celery workers compute (``classifier.tasks``); web processes never load a model.
"""

import uuid
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from classifier.adapter import ImageDecodeError, ModelDirectoryError, ModelLoadError, explainer_for
from classifier.broker_recovery import task_send_or_defer
from classifier.models import GradCam, GradCamStatus, Prediction


def gradcam_request(*, prediction: Prediction) -> GradCam:
    """The prediction's Grad-CAM row; queues the computation when there is none yet (or it failed)."""
    gradcam, created = GradCam.objects.get_or_create(prediction=prediction)
    retry = not created and gradcam.status == GradCamStatus.FAILED
    if retry:
        retry = bool(
            GradCam.objects.filter(pk=gradcam.pk, status=GradCamStatus.FAILED).update(
                status=GradCamStatus.QUEUED, error="", finished_at=None
            )
        )
        gradcam.refresh_from_db()
    if created or retry:
        transaction.on_commit(lambda: _gradcam_enqueue(gradcam.pk))
    return gradcam


def _gradcam_enqueue(gradcam_id: int) -> None:
    from classifier.tasks import gradcam_compute_task

    task_send_or_defer(gradcam_compute_task, gradcam_id)


def gradcam_compute(*, gradcam_id: int) -> GradCam | None:
    """Worker side: explain the predicted class and store the overlay; safe to run twice."""
    gradcam = (
        GradCam.objects.select_related("prediction__model_version", "prediction__cell_image")
        .filter(pk=gradcam_id)
        .first()
    )
    if gradcam is None or gradcam.status != GradCamStatus.QUEUED:
        return gradcam
    prediction = gradcam.prediction
    try:
        with default_storage.open(prediction.cell_image.file.name, "rb") as handle:
            data = handle.read()
        png = explainer_for(prediction.model_version).overlay_png(data, class_name=prediction.label)
    except (ModelLoadError, ModelDirectoryError, ImageDecodeError, OSError, ValueError) as error:
        return _gradcam_finish(gradcam, status=GradCamStatus.FAILED, error=f"{type(error).__name__}: {error}")
    name = default_storage.save(
        f"gradcam/prediction-{prediction.pk}-{uuid.uuid4().hex}.png", ContentFile(png)
    )
    finished = _gradcam_finish(gradcam, status=GradCamStatus.SUCCEEDED, image=name)
    if finished.image.name != name:
        default_storage.delete(name)  # another run stored its overlay first
    return finished


def _gradcam_finish(gradcam: GradCam, **fields: Any) -> GradCam:
    GradCam.objects.filter(pk=gradcam.pk, status=GradCamStatus.QUEUED).update(
        finished_at=timezone.now(), **fields
    )
    gradcam.refresh_from_db()
    return gradcam

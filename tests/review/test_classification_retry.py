"""A pathologist's retry of the cells the model could not classify (review.services), run by the
tiny real model."""

import pytest

from audit.models import AuditAction, AuditEvent
from classifier import services, tasks
from classifier.models import InferenceJob, InferenceJobStatus, Prediction, PredictionFailure
from review.services import slide_classification_retry
from tests.factories import cell_image_make, slide_make, stained_cell_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def enqueued(monkeypatch) -> list[int]:
    """Job ids handed to the broker, instead of a real broker."""
    sent: list[int] = []
    monkeypatch.setattr(tasks.inference_job_run_task, "delay", sent.append)
    return sent


@pytest.fixture
def submitted_job(
    patient, lab_staff, tiny_model_version, enqueued, django_capture_on_commit_callbacks
) -> InferenceJob:
    """A draft slide of five cells submitted to the tiny real model (not run yet)."""
    slide = slide_make(patient, lab_staff, "S-5101")
    for seed in range(5):
        cell_image_make(slide, lab_staff, stained_cell_bytes(seed), name=f"cell-{seed}.png")
    with django_capture_on_commit_callbacks(execute=True):
        return services.slide_submit(actor=lab_staff, slide=slide)


def _events(action: AuditAction) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def test_a_retry_classifies_a_cell_whose_file_came_back(
    submitted_job, pathologist, enqueued, django_capture_on_commit_callbacks
):
    missing = submitted_job.cell_images.order_by("pk")[0]
    content = missing.file.storage.open(missing.file.name, "rb").read()
    missing.file.storage.delete(missing.file.name)
    services.inference_job_run(job_id=submitted_job.pk)
    with missing.file.storage.open(missing.file.name, "wb") as handle:
        handle.write(content)

    with django_capture_on_commit_callbacks(execute=True):
        retry = slide_classification_retry(actor=pathologist, slide=submitted_job.slide)
    job = services.inference_job_run(job_id=retry.pk)

    assert list(retry.cell_images.all()) == [missing] and enqueued[-1] == retry.pk
    assert (job.status, job.total, job.done, job.failed) == (InferenceJobStatus.SUCCEEDED, 1, 1, 0)
    assert Prediction.objects.filter(cell_image=missing, job=retry).exists()
    assert PredictionFailure.objects.get().job == submitted_job, "the first failure stays as history"
    assert _events(AuditAction.INFERENCE_JOB_CREATED)[-1].after["retry"] is True


def test_a_retry_that_fails_again_records_a_second_failure_with_the_same_model(
    submitted_job, pathologist, enqueued, django_capture_on_commit_callbacks
):
    missing = submitted_job.cell_images.order_by("pk")[0]
    missing.file.storage.delete(missing.file.name)
    services.inference_job_run(job_id=submitted_job.pk)

    with django_capture_on_commit_callbacks(execute=True):
        retry = slide_classification_retry(actor=pathologist, slide=submitted_job.slide)
    job = services.inference_job_run(job_id=retry.pk)

    assert (job.status, job.total, job.done, job.failed) == (InferenceJobStatus.FAILED, 1, 0, 1)
    assert list(PredictionFailure.objects.order_by("id").values_list("job_id", "model_version_id")) == [
        (submitted_job.pk, submitted_job.model_version_id),
        (retry.pk, submitted_job.model_version_id),
    ]
    submitted_job.refresh_from_db()
    assert submitted_job.failed == 1, "each job counts its own failures"

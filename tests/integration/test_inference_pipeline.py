"""The pipeline with real parts: uploads, submit, Redis, a `celery worker` subprocess, the model."""

import math
import time

import pytest
from django.utils import timezone

from accounts.models import User
from audit.models import AuditAction, AuditEvent
from cases.models import Patient, Sex, Slide
from cases.services import cell_image_create, patient_create, slide_create
from cases.uploads import UploadLimits, image_validate
from classifier.models import InferenceJob, InferenceJobStatus, Prediction, PredictionFailure
from classifier.services import slide_submit
from classifier.tasks import inference_job_run_task
from devtools.benchmark import shared_test_images

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

JOB_SECONDS = 90


def _slide_with_shared_images(actor: User, count: int, accession_number: str) -> Slide:
    patient = Patient.objects.filter(mrn="INT-1").first() or patient_create(
        actor=actor, mrn="INT-1", family_name="Test", given_name="Integration",
        date_of_birth=timezone.now().date().replace(year=1970), sex=Sex.UNKNOWN,
    )  # fmt: skip
    slide = slide_create(
        actor=actor,
        patient=patient,
        accession_number=accession_number,
        collected_at=timezone.now(),
        stain="wright",
    )
    limits = UploadLimits.from_settings()
    for path in shared_test_images(count):
        image = image_validate(data=path.read_bytes(), original_filename=path.name, limits=limits)
        cell_image_create(actor=actor, slide=slide, image=image)
    return slide


def _wait_until(condition, seconds: float = JOB_SECONDS, interval: float = 0.05) -> None:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"not reached within {seconds}s")


def _job_finished(job: InferenceJob) -> bool:
    job.refresh_from_db()
    return job.is_finished


def test_a_submitted_slide_is_classified_by_a_worker_even_when_its_task_is_delivered_twice(
    lab_staff, make_worker
):
    make_worker(concurrency=2)
    slide = _slide_with_shared_images(lab_staff, 10, "INT-S-10")

    job = slide_submit(actor=lab_staff, slide=slide)
    inference_job_run_task.delay(job.pk)  # the same job a second time, racing the first delivery
    _wait_until(lambda: _job_finished(job))
    inference_job_run_task.delay(job.pk).get(timeout=30)  # and once more after it finished

    job.refresh_from_db()
    assert (job.status, job.total, job.done, job.failed) == (InferenceJobStatus.SUCCEEDED, 10, 10, 0)
    predictions = list(Prediction.objects.filter(cell_image__slide=slide))
    assert len(predictions) == 10
    assert len({prediction.cell_image_id for prediction in predictions}) == 10
    for prediction in predictions:
        assert math.isclose(sum(prediction.probabilities.values()), 1.0, abs_tol=1e-4)
    assert not PredictionFailure.objects.exists()
    # The default model gets at least 8 of these 10 right (its Kaggle TEST accuracy is 88%).
    truth = [path.parent.name for path in shared_test_images(10)]
    labels = [p.label for p in sorted(predictions, key=lambda prediction: prediction.cell_image_id)]
    assert sum(label == expected for label, expected in zip(labels, truth, strict=True)) >= 8
    events = AuditEvent.objects.filter(object_type="classifier.inferencejob", object_id=str(job.pk))
    assert sorted(events.values_list("action", flat=True)) == sorted(
        [
            AuditAction.INFERENCE_JOB_CREATED,
            AuditAction.INFERENCE_JOB_STARTED,
            AuditAction.INFERENCE_JOB_FINISHED,
        ]
    )
    assert AuditEvent.objects.filter(
        action=AuditAction.SLIDE_STATUS_CHANGED, object_id=str(slide.pk)
    ).exists()


def test_a_job_whose_worker_is_killed_mid_way_finishes_after_a_restart_with_nothing_lost_or_doubled(
    lab_staff, make_worker
):
    # Small batches so the job is caught part-way; a short visibility timeout so Redis hands the
    # unacknowledged message to the restarted worker within seconds instead of an hour.
    environment = {
        "HEMATOVISION_INFERENCE_BATCH_SIZE": "2",
        "HEMATOVISION_CELERY_VISIBILITY_TIMEOUT_SECONDS": "3",
        "HEMATOVISION_CELERY_RESTORE_INTERVAL_SECONDS": "1",
    }
    worker = make_worker(**environment)
    slide = _slide_with_shared_images(lab_staff, 40, "INT-S-40")

    job = slide_submit(actor=lab_staff, slide=slide)
    _wait_until(lambda: InferenceJob.objects.filter(pk=job.pk, done__gt=0).exists(), interval=0.005)
    worker.kill()

    job.refresh_from_db()
    assert job.status == InferenceJobStatus.RUNNING
    assert 0 < job.done < 40
    make_worker(**environment)
    _wait_until(lambda: _job_finished(job))

    assert (job.status, job.done, job.failed) == (InferenceJobStatus.SUCCEEDED, 40, 0)
    assert job.attempts >= 2
    predictions = Prediction.objects.filter(cell_image__slide=slide)
    assert predictions.count() == 40
    assert predictions.values("cell_image").distinct().count() == 40


def test_a_poison_image_and_a_missing_file_become_failures_while_the_rest_of_the_slide_finishes(
    lab_staff, make_worker
):
    make_worker()
    slide = _slide_with_shared_images(lab_staff, 4, "INT-S-BAD")
    poisoned, missing = slide.cell_images.order_by("pk")[:2]
    with poisoned.file.storage.open(poisoned.file.name, "wb") as handle:
        handle.write(b"\x89PNG but not really")
    missing.file.storage.delete(missing.file.name)

    job = slide_submit(actor=lab_staff, slide=slide)
    _wait_until(lambda: _job_finished(job))

    assert (job.status, job.done, job.failed) == (InferenceJobStatus.PARTIALLY_FAILED, 2, 2)
    reasons = dict(PredictionFailure.objects.filter(job=job).values_list("cell_image_id", "reason"))
    assert reasons[poisoned.pk].startswith("image could not be decoded")
    assert reasons[missing.pk].startswith("image file missing from storage")
    assert not Prediction.objects.filter(cell_image__in=[poisoned, missing]).exists()

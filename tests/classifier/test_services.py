import math
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, InternalError, ProgrammingError, transaction
from django.db.models import ProtectedError

from audit.models import AuditAction, AuditEvent
from cases.models import SlideStatus
from cases.services import cell_images_upload
from cases.uploads import UploadRejected
from classifier import services, tasks
from classifier.models import (
    InferenceJob,
    InferenceJobStatus,
    ModelVersion,
    Prediction,
    PredictionFailure,
    QuickClassification,
    QuickClassificationStatus,
)
from ml.card import read_card, write_card
from ml.testing import make_tiny_model_dir
from tests.factories import stained_cell_bytes


@pytest.fixture
def enqueued(monkeypatch) -> list[int]:
    """Ids handed to the broker, instead of a real broker."""
    sent: list[int] = []
    monkeypatch.setattr(tasks.inference_job_run_task, "delay", sent.append)
    monkeypatch.setattr(tasks.quick_classification_run_task, "delay", sent.append)
    return sent


@pytest.fixture
def submitted_job(slide_with_cells, lab_staff, model_version, enqueued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return services.slide_submit(actor=lab_staff, slide=slide_with_cells)


def _events(action: AuditAction) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


# --- Model registry ---


def test_it_registers_a_model_with_the_sha256_of_each_file_and_activates_the_first(tiny_model_dir, db):
    model_version = services.model_version_register(directory=tiny_model_dir)

    assert model_version.name == "tiny-test"
    assert model_version.directory == "tiny-test"
    assert set(model_version.file_hashes) == {"model_card.json", "model.keras", "model.tflite"}
    assert model_version.review_threshold == 0.9
    assert ModelVersion.objects.get(is_active=True) == model_version
    assert [e.after["active"] for e in _events(AuditAction.MODEL_VERSION_ACTIVATED)] == ["tiny-test"]


def test_it_refuses_a_model_that_does_not_predict_the_four_white_cell_classes(models_root, db):
    directory = make_tiny_model_dir(models_root / "three", classes=["A", "B", "C"], version="three")

    with pytest.raises(ValidationError, match="exactly"):
        services.model_version_register(directory=directory)
    assert not ModelVersion.objects.exists()


def test_activating_another_version_deactivates_the_previous_one_and_audits_the_switch(
    model_version, models_root, administrator
):
    other = services.model_version_register(
        directory=make_tiny_model_dir(models_root / "tiny-2", version="tiny-2", seed=1)
    )
    assert not other.is_active

    services.model_version_activate(actor=administrator, model_version=other)

    assert list(ModelVersion.objects.filter(is_active=True)) == [other]
    event = _events(AuditAction.MODEL_VERSION_ACTIVATED)[-1]
    assert (event.before, event.after, event.actor) == (
        {"active": "tiny-test"},
        {"active": "tiny-2"},
        administrator,
    )


def test_the_default_model_is_registered_once(monkeypatch, tiny_model_dir, db):
    monkeypatch.setenv("HEMATOVISION_MODEL_DIR", str(tiny_model_dir))

    first = services.model_version_register_default()
    second = services.model_version_register_default()

    assert first == second
    assert ModelVersion.objects.count() == 1
    assert len(_events(AuditAction.MODEL_VERSION_REGISTERED)) == 1


def test_a_default_model_changed_under_the_same_version_is_not_registered_again(
    monkeypatch, tiny_model_dir, db, caplog
):
    monkeypatch.setenv("HEMATOVISION_MODEL_DIR", str(tiny_model_dir))
    first = services.model_version_register_default()
    (tiny_model_dir / "notes.txt").write_text("retrained")

    assert services.model_version_register_default() == first
    assert "changed since it was registered" in caplog.text
    assert ModelVersion.objects.count() == 1


def test_without_a_default_model_nothing_is_registered(monkeypatch, tmp_path, db):
    monkeypatch.setenv("HEMATOVISION_MODEL_DIR", str(tmp_path / "absent"))

    assert services.model_version_register_default() is None
    assert not ModelVersion.objects.exists()


# --- Submitting ---


def test_submitting_a_slide_queues_a_job_for_every_image_once_the_transaction_commits(
    slide_with_cells, lab_staff, model_version, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        job = services.slide_submit(actor=lab_staff, slide=slide_with_cells)
        assert enqueued == []

    for callback in callbacks:
        callback()
    slide_with_cells.refresh_from_db()
    assert slide_with_cells.status == SlideStatus.SUBMITTED
    assert (job.status, job.total, job.model_version) == (InferenceJobStatus.QUEUED, 5, model_version)
    assert job.cell_images.count() == 5
    assert enqueued == [job.pk]
    assert _events(AuditAction.INFERENCE_JOB_CREATED)[0].after == {
        "slide_id": slide_with_cells.pk,
        "model_version": "tiny-test",
        "total": 5,
    }


def test_it_refuses_to_submit_a_slide_without_cell_images(slide, lab_staff, model_version):
    with pytest.raises(ValidationError, match="at least one"):
        services.slide_submit(actor=lab_staff, slide=slide)
    slide.refresh_from_db()
    assert slide.status == SlideStatus.DRAFT
    assert not InferenceJob.objects.exists()


def test_it_refuses_to_submit_when_no_model_is_active(slide_with_cells, lab_staff):
    with pytest.raises(ValidationError, match="No model version is active"):
        services.slide_submit(actor=lab_staff, slide=slide_with_cells)
    slide_with_cells.refresh_from_db()
    assert slide_with_cells.status == SlideStatus.DRAFT


def test_it_refuses_to_submit_a_slide_twice(submitted_job, lab_staff):
    with pytest.raises(ValidationError, match="cannot become submitted"):
        services.slide_submit(actor=lab_staff, slide=submitted_job.slide)
    assert InferenceJob.objects.count() == 1


def test_images_added_to_a_submitted_slide_are_queued_in_a_job_of_their_own(
    submitted_job, add_cell_image, lab_staff, enqueued, django_capture_on_commit_callbacks
):
    slide = submitted_job.slide
    added = [
        add_cell_image(slide, stained_cell_bytes(50 + seed), name=f"late-{seed}.png") for seed in range(2)
    ]

    with django_capture_on_commit_callbacks(execute=True):
        job = services.slide_new_images_classify(actor=lab_staff, slide=slide)

    assert set(job.cell_images.all()) == set(added)
    assert job.total == 2
    assert enqueued == [submitted_job.pk, job.pk]


def test_uploading_to_a_submitted_slide_queues_the_new_images(
    submitted_job, lab_staff, enqueued, django_capture_on_commit_callbacks
):
    files = [SimpleUploadedFile("late.png", stained_cell_bytes(77)), SimpleUploadedFile("bad.png", b"nope")]

    with django_capture_on_commit_callbacks(execute=True):
        outcomes = cell_images_upload(actor=lab_staff, slide=submitted_job.slide, files=files)

    assert [outcome.accepted for outcome in outcomes] == [True, False]
    job = InferenceJob.objects.exclude(pk=submitted_job.pk).get()
    assert list(job.cell_images.all()) == [outcomes[0].cell_image]
    assert enqueued == [submitted_job.pk, job.pk]


def test_images_added_to_a_draft_slide_wait_for_submission(
    slide_with_cells, lab_staff, model_version, enqueued
):
    assert services.slide_new_images_classify(actor=lab_staff, slide=slide_with_cells) is None
    assert not InferenceJob.objects.exists()


# --- Running a job ---


def test_running_a_job_stores_one_prediction_per_image_and_audits_start_and_end(submitted_job):
    job = services.inference_job_run(job_id=submitted_job.pk)

    job.refresh_from_db()
    assert (job.status, job.done, job.failed, job.attempts) == (InferenceJobStatus.SUCCEEDED, 5, 0, 1)
    assert job.started_at <= job.finished_at
    predictions = list(Prediction.objects.filter(job=job))
    assert len(predictions) == 5
    for prediction in predictions:
        assert math.isclose(sum(prediction.probabilities.values()), 1.0, abs_tol=1e-5)
        assert prediction.confidence == max(prediction.probabilities.values())
        assert prediction.label == max(prediction.probabilities, key=prediction.probabilities.get)
        assert prediction.inference_ms > 0
    assert [e.after["status"] for e in _events(AuditAction.INFERENCE_JOB_STARTED)] == ["running"]
    finished = _events(AuditAction.INFERENCE_JOB_FINISHED)
    assert [(e.actor_username, e.after) for e in finished] == [
        ("inference-worker", {"status": "succeeded", "total": 5, "done": 5, "failed": 0})
    ]


def test_running_the_same_job_twice_adds_nothing_the_second_time(submitted_job):
    services.inference_job_run(job_id=submitted_job.pk)
    services.inference_job_run(job_id=submitted_job.pk)

    assert Prediction.objects.count() == 5
    assert len(_events(AuditAction.INFERENCE_JOB_FINISHED)) == 1


def test_a_redelivered_job_that_was_running_classifies_only_the_remaining_images(submitted_job, settings):
    settings.HEMATOVISION_INFERENCE_BATCH_SIZE = 2
    job = services._job_claim(submitted_job.pk)
    first_batch = list(job.cell_images.order_by("pk")[:2])
    services._batch_classify(job, services.predictor_for(job.model_version), first_batch)
    first_rows = set(Prediction.objects.values_list("pk", flat=True))

    services.inference_job_run(job_id=job.pk)

    job.refresh_from_db()
    assert (job.status, job.done, job.attempts) == (InferenceJobStatus.SUCCEEDED, 5, 2)
    assert Prediction.objects.count() == 5
    assert first_rows <= set(Prediction.objects.values_list("pk", flat=True))
    assert len(_events(AuditAction.INFERENCE_JOB_STARTED)) == 1


def test_an_undecodable_stored_image_becomes_a_failure_and_the_rest_of_the_slide_finishes(submitted_job):
    poisoned = submitted_job.cell_images.order_by("pk")[1]
    with poisoned.file.storage.open(poisoned.file.name, "wb") as handle:
        handle.write(b"this is not an image any more")

    job = services.inference_job_run(job_id=submitted_job.pk)

    assert (job.status, job.done, job.failed) == (InferenceJobStatus.PARTIALLY_FAILED, 4, 1)
    failure = PredictionFailure.objects.get()
    assert failure.cell_image == poisoned
    assert failure.reason.startswith("image could not be decoded")
    assert not Prediction.objects.filter(cell_image=poisoned).exists()


def test_a_stored_file_gone_missing_becomes_a_failure(submitted_job):
    missing = submitted_job.cell_images.order_by("pk")[0]
    missing.file.storage.delete(missing.file.name)

    job = services.inference_job_run(job_id=submitted_job.pk)

    assert (job.status, job.done, job.failed) == (InferenceJobStatus.PARTIALLY_FAILED, 4, 1)
    assert PredictionFailure.objects.get().reason.startswith("image file missing from storage")


def test_a_job_whose_every_image_fails_is_failed(submitted_job):
    for cell_image in submitted_job.cell_images.all():
        cell_image.file.storage.delete(cell_image.file.name)

    job = services.inference_job_run(job_id=submitted_job.pk)

    assert (job.status, job.done, job.failed) == (InferenceJobStatus.FAILED, 0, 5)


def test_a_model_file_failing_its_checksum_fails_the_job_and_writes_no_prediction(
    submitted_job, tiny_model_dir
):
    with (tiny_model_dir / "model.tflite").open("ab") as handle:
        handle.write(b"tampered")

    job = services.inference_job_run(job_id=submitted_job.pk)

    assert job.status == InferenceJobStatus.FAILED
    assert "do not match the sha256 recorded at registration (changed: model.tflite)" in job.error
    assert not Prediction.objects.exists()
    assert not PredictionFailure.objects.exists()
    assert _events(AuditAction.INFERENCE_JOB_FINISHED)[0].reason == job.error


def test_a_model_directory_gone_missing_fails_the_job(submitted_job, tiny_model_dir):
    for path in tiny_model_dir.iterdir():
        path.unlink()
    tiny_model_dir.rmdir()

    job = services.inference_job_run(job_id=submitted_job.pk)

    assert job.status == InferenceJobStatus.FAILED
    assert "does not exist" in job.error


def test_a_job_that_no_longer_exists_is_ignored(db):
    assert services.inference_job_run(job_id=987654) is None


def test_a_slide_with_an_inference_job_cannot_be_deleted(submitted_job):
    with pytest.raises(ProtectedError):
        submitted_job.slide.delete()


def test_a_job_that_keeps_killing_workers_is_failed_instead_of_retried_for_ever(submitted_job, settings):
    settings.HEMATOVISION_INFERENCE_MAX_ATTEMPTS = 2
    InferenceJob.objects.filter(pk=submitted_job.pk).update(status=InferenceJobStatus.RUNNING, attempts=2)

    job = services.inference_job_run(job_id=submitted_job.pk)

    assert job.status == InferenceJobStatus.FAILED
    assert job.error == "Abandoned after 2 attempts ended without a result."
    assert not Prediction.objects.exists()


def test_an_abandoned_task_leaves_its_job_failed_with_the_error(submitted_job):
    services.inference_job_abandon(job_id=submitted_job.pk, error="OperationalError: database went away")

    submitted_job.refresh_from_db()
    assert submitted_job.status == InferenceJobStatus.FAILED
    assert submitted_job.error == "OperationalError: database went away"


def test_rerunning_a_slide_with_another_model_version_adds_predictions_beside_the_old_ones(
    submitted_job, models_root, lab_staff, enqueued
):
    services.inference_job_run(job_id=submitted_job.pk)
    other = services.model_version_register(
        directory=make_tiny_model_dir(models_root / "tiny-2", version="tiny-2", seed=1)
    )

    job = services.inference_job_create(actor=lab_staff, slide=submitted_job.slide, model_version=other)
    services.inference_job_run(job_id=job.pk)

    assert Prediction.objects.filter(model_version=submitted_job.model_version).count() == 5
    assert Prediction.objects.filter(model_version=other).count() == 5
    assert (
        services.inference_job_create(actor=lab_staff, slide=submitted_job.slide, model_version=other) is None
    )


def test_a_prediction_is_never_updated_or_deleted(submitted_job):
    services.inference_job_run(job_id=submitted_job.pk)
    prediction = Prediction.objects.first()

    with pytest.raises(PermissionError):
        prediction.save()
    for change in (lambda: Prediction.objects.update(label="MONOCYTE"), Prediction.objects.all().delete):
        with pytest.raises((InternalError, IntegrityError, ProgrammingError)), transaction.atomic():
            change()
    assert Prediction.objects.count() == 5


# --- Quick classification ---


def test_a_quick_classification_is_queued_then_classified_outside_any_slide(
    pathologist, model_version, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        quick = services.quick_classification_create(
            actor=pathologist, data=stained_cell_bytes(3), original_filename="x.png"
        )
    assert enqueued == [quick.pk]
    assert quick.image.name.startswith("quick-classify/")

    quick = services.quick_classification_run(quick_classification_id=quick.pk)

    assert quick.status == QuickClassificationStatus.SUCCEEDED
    assert quick.label in quick.probabilities
    assert math.isclose(sum(quick.probabilities.values()), 1.0, abs_tol=1e-5)
    assert not Prediction.objects.exists()


def test_a_quick_classification_refuses_a_file_that_is_not_an_image(pathologist, model_version, media_root):
    with pytest.raises(UploadRejected):
        services.quick_classification_create(actor=pathologist, data=b"%PDF-1.4", original_filename="x.pdf")
    assert not any(path.is_file() for path in media_root.rglob("*"))


def test_a_model_failing_its_checksum_fails_a_quick_classification(
    pathologist, model_version, tiny_model_dir, enqueued
):
    quick = services.quick_classification_create(
        actor=pathologist, data=stained_cell_bytes(3), original_filename="x.png"
    )
    card = read_card(tiny_model_dir)
    write_card(tiny_model_dir, {**card, "review_threshold": 0.1})

    quick = services.quick_classification_run(quick_classification_id=quick.pk)

    assert quick.status == QuickClassificationStatus.FAILED
    assert "changed: model_card.json" in quick.error


def test_quick_classifications_older_than_the_retention_are_deleted_with_their_files(
    pathologist, model_version, enqueued
):
    old = services.quick_classification_create(
        actor=pathologist, data=stained_cell_bytes(1), original_filename="o.png"
    )
    recent = services.quick_classification_create(
        actor=pathologist, data=stained_cell_bytes(2), original_filename="r.png"
    )
    QuickClassification.objects.filter(pk=old.pk).update(created_at=old.created_at - timedelta(days=2))

    assert (
        services.quick_classifications_purge(
            older_than_seconds=services.QUICK_CLASSIFICATION_RETENTION_SECONDS
        )
        == 1
    )

    assert list(QuickClassification.objects.all()) == [recent]
    assert not old.image.storage.exists(old.image.name)
    assert recent.image.storage.exists(recent.image.name)

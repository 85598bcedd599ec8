"""Whole microscope fields in the worker: the job locates the white cells of each field, stores one
cell image per cell (the classifier's crop, linked to its field and box) and classifies them."""

import pytest

from audit.models import AuditAction, AuditEvent
from cases.models import CellImage, CellSource, FieldImage, SlideStatus
from cases.services import cell_images_upload
from classifier import services, tasks
from classifier.models import InferenceJob, InferenceJobStatus, Prediction
from classifier.selectors import inference_job_progress
from tests.factories import field_bytes, field_image_make, stained_cell_bytes, uploaded


@pytest.fixture
def enqueued(monkeypatch) -> list[int]:
    sent: list[int] = []
    monkeypatch.setattr(tasks.inference_job_run_task, "delay", sent.append)
    return sent


@pytest.fixture
def submit(lab_staff, model_version, enqueued, django_capture_on_commit_callbacks):
    def run(slide) -> InferenceJob:  # noqa: ANN001
        with django_capture_on_commit_callbacks(execute=True):
            job = services.slide_submit(actor=lab_staff, slide=slide)
        return services.inference_job_run(job_id=job.pk)

    return run


def test_a_field_job_locates_each_white_cell_and_classifies_its_crop(slide, lab_staff, submit):
    field = field_image_make(slide, lab_staff, field_bytes([(180, 220), (460, 240)]), name="f1.png")

    job = submit(slide)

    field.refresh_from_db()
    cells = list(CellImage.objects.filter(field_image=field).order_by("id"))
    assert field.located_count == 2 and field.is_located and field.locator["min_area"] > 0
    assert [cell.source for cell in cells] == [CellSource.LOCATED] * 2
    assert sorted(round(cell.box_x + cell.box_w / 2, -1) for cell in cells) == [180, 460]
    assert all(0.5 <= cell.locator_score <= 1 and cell.slide_id == slide.pk for cell in cells)
    assert all(cell.image_format == "PNG" and cell.width == cell.height for cell in cells)
    assert job.status == InferenceJobStatus.SUCCEEDED and (job.total, job.done) == (2, 2)
    assert Prediction.objects.filter(cell_image__in=cells, job=job).count() == 2
    located = AuditEvent.objects.get(action=AuditAction.FIELD_IMAGE_LOCATED)
    assert located.object_id == str(field.pk) and located.actor_username == services.WORKER_ACTOR
    assert [c["cell_image_id"] for c in located.after["cells"]] == [cell.pk for cell in cells]
    finished = AuditEvent.objects.get(action=AuditAction.INFERENCE_JOB_FINISHED)
    assert finished.after["fields_total"] == 1 and finished.after["fields_empty"] == 0
    slide.refresh_from_db()
    assert slide.status == SlideStatus.READY_FOR_REVIEW


def test_cells_and_fields_of_one_slide_are_classified_in_the_same_job(
    slide, lab_staff, submit, add_cell_image
):
    add_cell_image(slide, stained_cell_bytes(1), name="single.png")
    field_image_make(slide, lab_staff, field_bytes([(300, 220)]))

    job = submit(slide)

    assert (job.total, job.done, job.failed) == (2, 2, 0)
    assert set(job.cell_images.values_list("source", flat=True)) == {CellSource.UPLOADED, CellSource.LOCATED}
    progress = inference_job_progress(job)
    assert (progress["fields_total"], progress["fields_located"], progress["fields_empty"]) == (1, 1, 0)


def test_a_field_without_a_white_cell_is_located_empty_and_the_job_says_so(slide, lab_staff, submit):
    field = field_image_make(slide, lab_staff, field_bytes([]))

    job = submit(slide)

    field.refresh_from_db()
    assert field.is_located and field.located_count == 0
    assert not CellImage.objects.filter(field_image=field).exists()
    assert job.status == InferenceJobStatus.SUCCEEDED and job.total == 0
    assert inference_job_progress(job)["fields_empty"] == 1
    assert AuditEvent.objects.get(action=AuditAction.INFERENCE_JOB_FINISHED).after["fields_empty"] == 1


def test_a_single_cell_crop_uploaded_as_a_field_gives_one_cell(slide, lab_staff, submit):
    crop = field_bytes([(160, 120)], size=(320, 240), red_cells=())
    outcomes = cell_images_upload(
        actor=lab_staff, slide=slide, files=[uploaded("crop.png", crop)], kind="field"
    )
    assert outcomes[0].kind == "field"

    job = submit(slide)

    assert job.total == 1 and CellImage.objects.get(field_image=outcomes[0].field_image).source == "located"


def test_overlapping_white_cells_give_one_box_each_without_a_crash(slide, lab_staff, submit):
    field = field_image_make(slide, lab_staff, field_bytes([(250, 240), (370, 240)]))

    job = submit(slide)

    field.refresh_from_db()
    assert job.status == InferenceJobStatus.SUCCEEDED
    boxes = list(CellImage.objects.filter(field_image=field).values_list("box_x", "box_y", "box_w", "box_h"))
    assert len(boxes) == field.located_count >= 1
    assert len(set(boxes)) == len(boxes)
    assert Prediction.objects.filter(cell_image__field_image=field).count() == len(boxes)


def test_running_a_field_job_again_stores_no_second_set_of_cells(slide, lab_staff, submit):
    field = field_image_make(slide, lab_staff, field_bytes([(180, 220), (460, 240)]))
    job = submit(slide)
    InferenceJob.objects.filter(pk=job.pk).update(status=InferenceJobStatus.RUNNING, finished_at=None)

    again = services.inference_job_run(job_id=job.pk)

    assert CellImage.objects.filter(field_image=field).count() == 2
    assert Prediction.objects.filter(cell_image__field_image=field).count() == 2
    assert AuditEvent.objects.filter(action=AuditAction.FIELD_IMAGE_LOCATED).count() == 1
    assert (again.total, again.done) == (2, 2)


def test_a_redelivered_job_after_locating_classifies_the_cells_it_located(
    slide, lab_staff, submit, monkeypatch
):
    field = field_image_make(slide, lab_staff, field_bytes([(180, 220)]))

    def dies(*args, **kwargs):  # noqa: ANN002, ANN003
        raise SystemExit("worker killed after locating")

    monkeypatch.setattr(services, "_batch_classify", dies)
    with pytest.raises(SystemExit):
        submit(slide)
    monkeypatch.undo()
    job = InferenceJob.objects.get(slide=slide)
    assert job.status == InferenceJobStatus.RUNNING and job.total == 1 and job.done == 0

    job = services.inference_job_run(job_id=job.pk)

    assert job.status == InferenceJobStatus.SUCCEEDED and job.done == 1
    assert CellImage.objects.filter(field_image=field).count() == 1


def test_a_field_file_gone_missing_is_said_on_the_field_and_fails_the_job(slide, lab_staff, submit):
    field = field_image_make(slide, lab_staff, field_bytes([(180, 220)]))
    field.file.storage.delete(field.file.name)

    job = submit(slide)

    field.refresh_from_db()
    assert not field.is_located and "could not be read" in field.location_error
    assert job.status == InferenceJobStatus.FAILED
    assert inference_job_progress(job)["fields_failed"] == 1


def test_an_unreadable_field_beside_good_cells_makes_the_job_partially_failed(
    slide, lab_staff, submit, add_cell_image
):
    add_cell_image(slide, stained_cell_bytes(3), name="good.png")
    field = field_image_make(slide, lab_staff, field_bytes([(180, 220)]))
    field.file.storage.delete(field.file.name)

    job = submit(slide)

    assert job.status == InferenceJobStatus.PARTIALLY_FAILED and (job.done, job.failed) == (1, 0)
    assert AuditEvent.objects.get(action=AuditAction.INFERENCE_JOB_FINISHED).after["fields_failed"] == 1


def test_uploading_a_field_to_a_submitted_slide_queues_it(
    slide, lab_staff, submit, enqueued, django_capture_on_commit_callbacks
):
    submit_job = submit  # the slide needs one image to be submitted
    field_image_make(slide, lab_staff, field_bytes([(180, 220)]), name="first.png")
    submit_job(slide)
    with django_capture_on_commit_callbacks(execute=True):
        cell_images_upload(
            actor=lab_staff, slide=slide, files=[uploaded("second.png", field_bytes([(400, 300)]))]
        )
    job = InferenceJob.objects.order_by("-id").first()
    assert list(job.field_images.values_list("original_filename", flat=True)) == ["second.png"]
    assert enqueued[-1] == job.pk


def test_submitting_needs_a_cell_or_a_field(slide, lab_staff, model_version):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="cell or field image"):
        services.slide_submit(actor=lab_staff, slide=slide)
    assert not FieldImage.objects.exists()

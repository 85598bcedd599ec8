"""Whole microscope fields through a real `celery worker` with the tiny model: a field uploaded on
the page is located and its cells classified in the slide's job; a pathologist marks one box *not
a white cell* and adds a missed cell by its box (classified by the worker), reviews, and the
differential counts the located and added cells; a field without a white cell says so; a field
uploaded through the API is located the same way."""

import time
from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from cases.models import CellImage, CellSource, FieldImage, SlideStatus
from cases.services import patient_create, slide_create
from classifier.models import InferenceJob, ModelVersion, Prediction
from classifier.services import model_version_register
from ml.testing import make_tiny_model_dir
from review.models import CellExclusion
from review.selectors import slide_differential
from review.services import prediction_review
from tests.factories import field_bytes, uploaded

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SECONDS = 120


@pytest.fixture
def serving_model(transactional_db, settings, tmp_path) -> ModelVersion:
    """The tiny model (fields are drawn; the plumbing is what is tested here)."""
    settings.HEMATOVISION_MODELS_ROOT = tmp_path / "models"
    return model_version_register(directory=make_tiny_model_dir(tmp_path / "models" / "tiny-fields"))


def _wait_until(condition: Callable[[], bool], seconds: float = SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"not reached within {seconds}s")


def _jobs_finished(slide) -> bool:  # noqa: ANN001
    jobs = InferenceJob.objects.filter(slide=slide)
    return jobs.exists() and all(job.is_finished for job in jobs)


def _slide(lab_staff, accession: str):  # noqa: ANN001, ANN202
    patient = patient_create(
        actor=lab_staff, mrn=f"MRN-{accession}", family_name="Field", given_name="Integration",
        date_of_birth=timezone.now().date().replace(year=1970), sex="unknown",
    )  # fmt: skip
    return slide_create(
        actor=lab_staff, patient=patient, accession_number=accession, collected_at=timezone.now()
    )


def test_a_field_is_located_classified_corrected_on_its_boxes_and_counted(
    lab_staff, pathologist, make_worker, serving_model
):
    worker = make_worker()
    slide = _slide(lab_staff, "INT-F-1")
    lab = Client()
    lab.force_login(lab_staff)
    files = [
        uploaded("two-cells.png", field_bytes([(180, 220), (460, 240)])),
        uploaded("empty.png", field_bytes([])),
    ]
    upload = lab.post(reverse("cases:cell_image_upload", args=[slide.pk]), {"files": files, "kind": "auto"})
    assert upload.status_code == 200 and FieldImage.objects.filter(slide=slide).count() == 2
    assert lab.post(reverse("classifier:slide_submit", args=[slide.pk])).status_code == 302

    _wait_until(lambda: _jobs_finished(slide))

    field = FieldImage.objects.get(slide=slide, original_filename="two-cells.png")
    empty = FieldImage.objects.get(slide=slide, original_filename="empty.png")
    assert (field.located_count, empty.located_count) == (2, 0), worker.log_tail()
    located = list(CellImage.objects.filter(field_image=field).order_by("id"))
    assert Prediction.objects.filter(cell_image__in=located).count() == 2
    job = InferenceJob.objects.get(slide=slide)
    assert (job.total, job.done, job.status) == (2, 2, "succeeded")
    slide_page = lab.get(reverse("cases:slide_detail", args=[slide.pk])).content.decode()
    assert "No white cell found" in slide_page and "1 with no white cell" in slide_page
    slide.refresh_from_db()
    assert slide.status == SlideStatus.READY_FOR_REVIEW

    doctor = Client()
    doctor.force_login(pathologist)
    view = doctor.get(reverse("review:field_detail", args=[field.pk])).content.decode()
    assert view.count('class="field-box field-box-located') == 2
    rejected = doctor.post(
        reverse("review:cell_image_exclude", args=[located[1].pk]),
        {"category": "not_white_cell", "reason": "Stain deposit, not a cell", "field": field.pk},
    )
    assert rejected.status_code == 302
    added = doctor.post(
        reverse("review:field_cell_add", args=[field.pk]),
        {"x": 20, "y": 300, "width": 150, "height": 150, "reason": "Missed by the locator"},
    )
    assert added.status_code == 302
    added_cell = CellImage.objects.get(field_image=field, source=CellSource.ADDED)
    _wait_until(lambda: Prediction.objects.filter(cell_image=added_cell).exists())
    _wait_until(lambda: _jobs_finished(slide))

    for prediction in Prediction.objects.filter(cell_image__slide=slide).exclude(cell_image=located[1]):
        prediction_review(actor=pathologist, prediction=prediction, label=prediction.label)
    differential = slide_differential(slide=slide)
    assert (differential.verified_total, differential.excluded) == (2, 1)
    assert CellExclusion.objects.get().category == "not_white_cell"
    export = doctor.get(reverse("review:slide_export", args=[slide.pk]), {"as": "json"}).json()
    by_id = {cell["cell_image_id"]: cell for cell in export["cells"]}
    assert by_id[added_cell.pk]["cell_source"] == "added" and by_id[added_cell.pk]["box_w"] == 150
    assert by_id[located[1].pk]["exclusion_category"] == "not_white_cell"


def test_a_field_uploaded_through_the_api_to_a_submitted_slide_is_located(
    lab_staff, make_worker, serving_model, django_capture_on_commit_callbacks
):
    make_worker()
    slide = _slide(lab_staff, "INT-F-2")
    api = APIClient()
    api.force_authenticate(lab_staff)
    url = reverse("api:slide-cell-images", args=[slide.pk])
    first = api.post(
        url,
        {"files": [uploaded("a.jpg", field_bytes([(300, 220)], image_format="JPEG"))], "kind": "field"},
        format="multipart",
    )
    assert first.status_code == 201 and first.json()["results"][0]["kind"] == "field"
    assert api.post(reverse("api:slide-inference-submit", args=[slide.pk])).status_code == 202
    _wait_until(lambda: _jobs_finished(slide))
    second = api.post(
        url, {"files": [uploaded("b.png", field_bytes([(150, 150), (480, 330)]))]}, format="multipart"
    )
    assert second.json()["results"][0]["kind"] == "field"  # detected from its 640×480 size

    _wait_until(lambda: FieldImage.objects.filter(slide=slide, located_at__isnull=False).count() == 2)
    _wait_until(lambda: _jobs_finished(slide))

    fields = api.get(reverse("api:slide-field-images", args=[slide.pk])).json()["results"]
    assert [field["located_count"] for field in fields] == [1, 2]
    cells = api.get(reverse("api:cell-image-list"), {"field_image": fields[1]["id"]}).json()["results"]
    assert len(cells) == 2 and all(cell["source"] == "located" and cell["box_w"] > 0 for cell in cells)
    assert Prediction.objects.filter(cell_image__slide=slide).count() == 3

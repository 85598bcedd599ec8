import math

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from classifier import services, tasks
from classifier.models import InferenceJob, InferenceJobStatus, QuickClassification
from ml.testing import make_tiny_model_dir
from tests.conftest import PASSWORD
from tests.factories import stained_cell_bytes


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch):
    monkeypatch.setattr(tasks.inference_job_run_task, "delay", lambda *args: None)
    monkeypatch.setattr(tasks.quick_classification_run_task, "delay", lambda *args: None)


def _api(user) -> APIClient:  # noqa: ANN001
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_submitting_a_slide_answers_202_with_the_queued_job(lab_staff, slide_with_cells, model_version):
    response = _api(lab_staff).post(f"/api/slides/{slide_with_cells.pk}/submit/")

    assert response.status_code == 202
    job = InferenceJob.objects.get()
    assert response.json() | {"created_at": None} == {
        "id": job.pk,
        "slide": slide_with_cells.pk,
        "model_version": "tiny-test",
        "status": "queued",
        "total": 5,
        "done": 0,
        "failed": 0,
        "attempts": 0,
        "error": "",
        "requested_by": "lab",
        "created_at": None,
        "started_at": None,
        "finished_at": None,
    }


def test_submitting_twice_is_a_400_with_the_reason(lab_staff, slide_with_cells, model_version):
    _api(lab_staff).post(f"/api/slides/{slide_with_cells.pk}/submit/")

    response = _api(lab_staff).post(f"/api/slides/{slide_with_cells.pk}/submit/")

    assert response.status_code == 400
    assert "cannot become submitted" in str(response.json())


def test_a_pathologist_cannot_submit_through_the_api(pathologist, slide_with_cells, model_version):
    assert _api(pathologist).post(f"/api/slides/{slide_with_cells.pk}/submit/").status_code == 403
    assert not InferenceJob.objects.exists()


def test_job_status_and_the_slides_predictions_with_probabilities_and_model_version(
    lab_staff, pathologist, slide_with_cells, model_version, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        job = services.slide_submit(actor=lab_staff, slide=slide_with_cells)
    services.inference_job_run(job_id=job.pk)

    status = _api(pathologist).get(f"/api/inference-jobs/{job.pk}/").json()
    predictions = _api(pathologist).get(f"/api/slides/{slide_with_cells.pk}/predictions/").json()

    assert (status["status"], status["done"]) == ("succeeded", 5)
    assert predictions["count"] == 5
    first = predictions["results"][0]
    assert first["model_version"] == "tiny-test"
    assert set(first["probabilities"]) == {"EOSINOPHIL", "LYMPHOCYTE", "MONOCYTE", "NEUTROPHIL"}
    assert math.isclose(sum(first["probabilities"].values()), 1.0, abs_tol=1e-5)
    assert first["needs_review"] == (first["confidence"] < 0.9)
    assert first["review_threshold"] == 0.9  # the tiny card's, held by every cell


def test_rerunning_a_submitted_slide_with_another_model_version_queues_a_job(
    lab_staff, slide_with_cells, model_version, models_root
):
    services.slide_submit(actor=lab_staff, slide=slide_with_cells)
    services.model_version_register(
        directory=make_tiny_model_dir(models_root / "t2", version="tiny-2", seed=2)
    )

    response = _api(lab_staff).post(
        "/api/inference-jobs/", {"slide": slide_with_cells.pk, "model_version": "tiny-2"}, format="json"
    )

    assert response.status_code == 202
    assert (response.json()["model_version"], response.json()["total"]) == ("tiny-2", 5)


def test_a_draft_slide_cannot_be_rerun_before_it_is_submitted(lab_staff, slide_with_cells, model_version):
    response = _api(lab_staff).post("/api/inference-jobs/", {"slide": slide_with_cells.pk}, format="json")

    assert response.status_code == 400
    assert not InferenceJob.objects.exists()


def test_classifying_one_image_returns_a_job_to_poll(pathologist, model_version):
    upload = SimpleUploadedFile("cell.png", stained_cell_bytes(5), content_type="image/png")

    response = _api(pathologist).post("/api/quick-classifications/", {"image": upload}, format="multipart")

    assert response.status_code == 202
    quick = QuickClassification.objects.get()
    assert response.json()["status_url"].endswith(f"/api/quick-classifications/{quick.pk}/")
    services.quick_classification_run(quick_classification_id=quick.pk)
    polled = _api(pathologist).get(f"/api/quick-classifications/{quick.pk}/").json()
    assert polled["status"] == "succeeded"
    assert polled["label"] == max(polled["probabilities"], key=polled["probabilities"].get)


def test_classifying_something_that_is_not_an_image_is_a_400(pathologist, model_version):
    upload = SimpleUploadedFile("x.pdf", b"%PDF-1.4 nothing", content_type="application/pdf")

    response = _api(pathologist).post("/api/quick-classifications/", {"image": upload}, format="multipart")

    assert response.status_code == 400
    assert not QuickClassification.objects.exists()


def test_only_admins_activate_a_model_version(lab_staff, administrator, model_version, models_root):
    other = services.model_version_register(directory=make_tiny_model_dir(models_root / "t3", version="t3"))

    url = f"/api/model-versions/{other.pk}/activate/"
    assert _api(lab_staff).post(url, {"password": PASSWORD}).status_code == 403
    response = _api(administrator).post(url, {"password": PASSWORD})

    assert (response.status_code, response.json()["is_active"]) == (200, True)


def test_jobs_are_listed_per_slide_for_the_roles_that_see_slides(
    lab_staff, administrator, slide_with_cells, model_version
):
    services.slide_submit(actor=lab_staff, slide=slide_with_cells)

    listed = _api(lab_staff).get(f"/api/inference-jobs/?slide={slide_with_cells.pk}").json()

    assert [job["status"] for job in listed["results"]] == [InferenceJobStatus.QUEUED]
    assert _api(administrator).get("/api/inference-jobs/").status_code == 403


def test_listing_a_slides_predictions_takes_a_bounded_number_of_queries(
    lab_staff, pathologist, slide_with_cells, model_version, django_assert_max_num_queries
):
    job = services.slide_submit(actor=lab_staff, slide=slide_with_cells)
    services.inference_job_run(job_id=job.pk)
    client = _api(pathologist)

    with django_assert_max_num_queries(8):
        response = client.get(f"/api/slides/{slide_with_cells.pk}/predictions/")

    assert response.json()["count"] == 5

import json

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from audit.models import AuditAction, AuditEvent
from cases.models import SlideStatus
from classifier import selectors, services, tasks
from classifier.models import InferenceJob, ModelVersion, QuickClassification
from ml.card import write_card
from ml.domain import REVIEW_EVERYTHING, DomainThresholds
from ml.testing import make_tiny_model_dir
from tests.conftest import PASSWORD
from tests.factories import model_version_make, stained_cell_bytes


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch):
    """Tasks are recorded instead of sent; workers count as available unless a test says not."""
    monkeypatch.setattr(tasks.inference_job_run_task, "delay", lambda *args: None)
    monkeypatch.setattr(tasks.quick_classification_run_task, "delay", lambda *args: None)
    cache.set("classifier:workers-available", True)
    yield
    cache.clear()


@pytest.fixture
def finished_job(slide_with_cells, lab_staff, model_version, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = services.slide_submit(actor=lab_staff, slide=slide_with_cells)
    return services.inference_job_run(job_id=job.pk)


def test_submitting_from_the_slide_page_queues_a_job_and_returns_to_the_slide(
    lab_client, slide_with_cells, model_version
):
    response = lab_client.post(reverse("classifier:slide_submit", args=[slide_with_cells.pk]))

    assert response.status_code == 302
    assert response["Location"] == reverse("cases:slide_detail", args=[slide_with_cells.pk])
    slide_with_cells.refresh_from_db()
    assert slide_with_cells.status == SlideStatus.SUBMITTED
    assert InferenceJob.objects.get().total == 5


def test_a_refused_submission_shows_why_and_changes_nothing(lab_client, slide, model_version):
    response = lab_client.post(reverse("classifier:slide_submit", args=[slide.pk]), follow=True)

    assert "Upload at least one cell or field image" in response.content.decode()
    assert not InferenceJob.objects.exists()


def test_a_pathologist_cannot_submit_a_slide(pathologist_client, slide_with_cells, model_version):
    response = pathologist_client.post(reverse("classifier:slide_submit", args=[slide_with_cells.pk]))

    assert response.status_code == 403
    assert not InferenceJob.objects.exists()


def test_the_slide_page_shows_a_submit_button_on_a_draft_slide(lab_client, slide_with_cells, model_version):
    page = lab_client.get(reverse("cases:slide_detail", args=[slide_with_cells.pk])).content.decode()

    assert reverse("classifier:slide_submit", args=[slide_with_cells.pk]) in page


def test_the_slide_page_shows_each_cell_with_its_label_confidence_and_a_review_marker(
    pathologist_client, finished_job, django_assert_max_num_queries
):
    ModelVersion.objects.filter(pk=finished_job.model_version_id).update(review_threshold=1.0)
    url = reverse("cases:slide_detail", args=[finished_job.slide_id])

    with django_assert_max_num_queries(30):  # the gallery by class and the lab's class list
        page = pathologist_client.get(url).content.decode()

    assert reverse("classifier:inference_job_progress", args=[finished_job.pk]) in page
    assert page.count('class="progress-bar bg-warning"') == 5
    assert page.count(">Check</span>") == 5
    for prediction in finished_job.predictions.all():
        assert prediction.get_label_display() in page
    assert reverse("classifier:slide_submit", args=[finished_job.slide_id]) not in page


def test_job_progress_answers_counts_status_and_elapsed_time(pathologist_client, finished_job):
    response = pathologist_client.get(reverse("classifier:inference_job_progress", args=[finished_job.pk]))

    body = response.json()
    assert {key: body[key] for key in ("status", "finished", "total", "done", "failed")} == {
        "status": "succeeded",
        "finished": True,
        "total": 5,
        "done": 5,
        "failed": 0,
    }
    assert body["elapsed_seconds"] >= 0


def test_job_progress_is_refused_to_a_role_that_sees_no_slides(administrator_client, finished_job):
    response = administrator_client.get(reverse("classifier:inference_job_progress", args=[finished_job.pk]))

    assert response.status_code == 403


def test_quick_classify_queues_the_image_and_shows_its_result_once_classified(
    pathologist_client, model_version
):
    upload = SimpleUploadedFile("cell.png", stained_cell_bytes(9), content_type="image/png")

    response = pathologist_client.post(reverse("classifier:quick_classify"), {"image": upload})

    quick = QuickClassification.objects.get()
    assert response["Location"] == reverse("classifier:quick_classify_result", args=[quick.pk])
    waiting = pathologist_client.get(response["Location"]).content.decode()
    assert reverse("classifier:quick_classify_status", args=[quick.pk]) in waiting
    services.quick_classification_run(quick_classification_id=quick.pk)
    page = pathologist_client.get(response["Location"]).content.decode()
    quick.refresh_from_db()
    assert quick.get_label_display() in page
    assert page.count('class="bg-primary rounded h-100"') == 4
    assert "Not a clinical result" in page


def test_quick_classify_refuses_a_file_that_is_not_an_image(pathologist_client, model_version):
    upload = SimpleUploadedFile("notes.txt", b"hello", content_type="text/plain")

    response = pathologist_client.post(reverse("classifier:quick_classify"), {"image": upload})

    assert response.status_code == 400
    assert not QuickClassification.objects.exists()


def test_quick_classify_says_so_when_no_worker_is_running(pathologist_client, model_version):
    cache.set("classifier:workers-available", False)

    page = pathologist_client.get(reverse("classifier:quick_classify")).content.decode()

    assert "No inference worker is running" in page


def test_a_quick_classification_is_private_to_whoever_uploaded_it(lab_client, pathologist, model_version):
    quick = services.quick_classification_create(
        actor=pathologist, data=stained_cell_bytes(4), original_filename="a.png"
    )

    for name in ("quick_classify_result", "quick_classify_status", "quick_classify_image"):
        assert lab_client.get(reverse(f"classifier:{name}", args=[quick.pk])).status_code == 404


def test_without_a_broker_no_worker_counts_as_available(settings, monkeypatch):
    cache.clear()
    monkeypatch.setattr(selectors.celery_app.control, "ping", lambda **kwargs: [])

    assert selectors.workers_available() is False


def test_an_admin_activates_another_model_version_from_the_models_page(
    administrator_client, administrator, model_version
):
    other = model_version_make("other", review_threshold=0.8)

    response = administrator_client.post(
        reverse("classifier:model_version_activate", args=[other.pk]), {"password": PASSWORD}
    )

    assert response.status_code == 302
    assert ModelVersion.objects.get(is_active=True) == other
    event = AuditEvent.objects.filter(action=AuditAction.MODEL_VERSION_ACTIVATED).latest("id")
    assert (event.actor, event.after) == (administrator, {"active": "other"})


def test_lab_staff_cannot_switch_the_active_model(lab_client, model_version):
    other = model_version_make("other", review_threshold=0.8)

    url = reverse("classifier:model_version_activate", args=[other.pk])
    assert lab_client.post(url, {"password": PASSWORD}).status_code == 403
    assert ModelVersion.objects.get(is_active=True) == model_version


def test_no_page_or_endpoint_loads_the_model(
    monkeypatch, lab_client, pathologist_client, slide_with_cells, model_version
):
    def refuse(*args, **kwargs):  # noqa: ANN002, ANN003
        raise AssertionError("a web request loaded the model")

    monkeypatch.setattr("classifier.adapter.Predictor", refuse)
    submit = lab_client.post(reverse("classifier:slide_submit", args=[slide_with_cells.pk]))
    job = InferenceJob.objects.get()
    upload = SimpleUploadedFile("cell.png", stained_cell_bytes(8), content_type="image/png")
    quick = pathologist_client.post(reverse("classifier:quick_classify"), {"image": upload})

    answers = [
        submit.status_code,
        quick.status_code,
        lab_client.get(reverse("cases:slide_detail", args=[slide_with_cells.pk])).status_code,
        lab_client.get(reverse("classifier:inference_job_progress", args=[job.pk])).status_code,
        pathologist_client.get(quick["Location"]).status_code,
    ]
    assert answers == [302, 302, 200, 200, 200]


def test_quick_classify_says_when_no_confidence_is_validated_for_cells_like_this(
    pathologist_client, models_root
):
    directory = make_tiny_model_dir(
        models_root / "tiny-unvalidated",
        version="tiny-unvalidated",
        review_threshold=0.0,
        domain=DomainThresholds(1e9, 1e9),
        source_review_threshold=REVIEW_EVERYTHING,
    )
    services.model_version_activate(
        actor=None, model_version=services.model_version_register(directory=directory)
    )
    upload = SimpleUploadedFile("cell.png", stained_cell_bytes(9), content_type="image/png")
    response = pathologist_client.post(reverse("classifier:quick_classify"), {"image": upload})
    quick = QuickClassification.objects.get()
    services.quick_classification_run(quick_classification_id=quick.pk)

    page = pathologist_client.get(response["Location"]).content.decode()
    quick.refresh_from_db()
    assert (quick.in_domain, quick.review_threshold) == (True, REVIEW_EVERYTHING)
    assert "No confidence of model tiny-unvalidated is validated for cells like this one" in page


def test_the_models_page_lists_each_sources_own_review_threshold(administrator_client, models_root):
    directory = make_tiny_model_dir(
        models_root / "tiny-sources",
        version="tiny-sources",
        domain=DomainThresholds(1e9, 1e9),
        source_review_threshold=0.95,
    )
    card = json.loads((directory / "model_card.json").read_text())
    card["data"] = {"train_sources": "tiny", "validation_images": {"val_tiny": 40}}
    write_card(directory, card)
    version = services.model_version_register(directory=directory)

    page = administrator_client.get(reverse("classifier:model_version_list")).content.decode()
    assert version.validated_domains["sources"][0]["review_threshold"] == 0.95
    assert "40 validation images · review threshold 0.950" in page and "per source (see domains)" in page

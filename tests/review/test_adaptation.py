"""Gathering the lab's verified cells and starting an adaptation (no worker: the run stays queued).

The training itself, through a real worker, is tests/integration/test_adaptation_pipeline.py."""

import datetime

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditAction, AuditEvent
from cases.models import SlideStatus
from classifier import tasks
from classifier.adaptation import AdaptationError, adaptation_run_cancel
from classifier.models import AdaptationRun, AdaptationRunStatus
from review.adaptation import LabCellSelection, lab_adaptation_start, lab_cell_counts, lab_verified_cells
from review.models import CellExclusion
from review.services import cell_image_exclude
from tests.adaptation_lab import lab_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch) -> list[dict]:
    """What would have gone to the broker (no worker runs here)."""
    calls = []
    monkeypatch.setattr(tasks.adaptation_run_task, "apply_async", lambda **kwargs: calls.append(kwargs))
    return calls


@pytest.fixture
def lab(model_version, lab_staff, pathologist) -> dict:
    return lab_make(base=model_version, lab_staff=lab_staff, pathologist=pathologist, per_class=6)


def _api(user) -> APIClient:  # noqa: ANN001
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_the_final_label_is_the_latest_reviews_corrected_or_confirmed(lab):
    cells = dict(lab_verified_cells(selection=LabCellSelection()))

    assert len(cells) == 24
    for label, images in lab.items():
        # Every third cell was predicted wrongly and corrected: the corrected label counts.
        assert {cells[image.pk] for image in images} == {label}


def test_excluded_cells_are_left_out(model_version, lab_staff, pathologist):
    lab = lab_make(base=model_version, lab_staff=lab_staff, pathologist=pathologist, signed=False)
    excluded = lab["MONOCYTE"][0]
    cell_image_exclude(actor=pathologist, cell_image=excluded, category="artefact", reason="Smudged")
    assert CellExclusion.objects.filter(cell_image=excluded).exists()
    reviewed = LabCellSelection(signed_only=False)

    assert lab_cell_counts(selection=reviewed).counts["MONOCYTE"] == 5
    assert excluded.pk not in dict(lab_verified_cells(selection=reviewed))


def test_only_signed_slides_count_unless_asked(model_version, lab_staff, pathologist, lab):
    lab_make(
        base=model_version, lab_staff=lab_staff, pathologist=pathologist, per_class=2, signed=False, tag="B"
    )

    assert lab_cell_counts(selection=LabCellSelection()).total == 24
    everything = lab_cell_counts(selection=LabCellSelection(signed_only=False))
    assert everything.total == 32 and everything.slides == 5  # 2 per class fill 2 of the 3 new slides


def test_the_date_range_is_on_the_day_of_the_final_review(lab):
    today = timezone.now().date()
    yesterday = today - datetime.timedelta(days=1)

    assert lab_cell_counts(selection=LabCellSelection(date_from=today, date_to=today)).total == 24
    assert lab_cell_counts(selection=LabCellSelection(date_to=yesterday)).total == 0
    with pytest.raises(AdaptationError, match="start date is after"):
        LabCellSelection(date_from=today, date_to=yesterday)


def test_a_class_below_five_cells_is_refused_with_the_reason(
    model_version, lab_staff, pathologist, administrator, sent
):
    counts = {"EOSINOPHIL": 6, "LYMPHOCYTE": 6, "MONOCYTE": 4, "NEUTROPHIL": 6}
    lab_make(base=model_version, lab_staff=lab_staff, pathologist=pathologist, per_class=counts)

    assert "fewer for MONOCYTE 4" in lab_cell_counts(selection=LabCellSelection()).refusal
    with pytest.raises(AdaptationError, match="at least 5 verified cells; fewer for MONOCYTE 4"):
        lab_adaptation_start(actor=administrator, selection=LabCellSelection())
    assert not AdaptationRun.objects.exists() and sent == []


def test_a_missing_class_is_refused(model_version, lab_staff, pathologist, administrator):
    counts = {"EOSINOPHIL": 6, "LYMPHOCYTE": 6, "MONOCYTE": 6}
    lab_make(base=model_version, lab_staff=lab_staff, pathologist=pathologist, per_class=counts)

    with pytest.raises(AdaptationError, match="No verified cells of NEUTROPHIL"):
        lab_adaptation_start(actor=administrator, selection=LabCellSelection())
    assert not AdaptationRun.objects.exists()


def test_starting_freezes_the_cells_audits_and_queues_on_the_training_queue(
    lab, administrator, model_version, sent, settings, django_capture_on_commit_callbacks
):
    settings.HEMATOVISION_TRAINING_QUEUE = "training-here"
    with django_capture_on_commit_callbacks(execute=True):
        run = lab_adaptation_start(actor=administrator, selection=LabCellSelection())

    run.refresh_from_db()
    assert (run.status, run.base_model_version, run.started_by) == ("queued", model_version, administrator)
    assert run.class_counts == dict.fromkeys(["EOSINOPHIL", "LYMPHOCYTE", "MONOCYTE", "NEUTROPHIL"], 6)
    assert sorted(cell_id for cell_id, _ in run.cells) == sorted(
        i.pk for images in lab.values() for i in images
    )
    assert sent == [{"args": [run.pk], "queue": "training-here"}]
    event = AuditEvent.objects.get(action=AuditAction.ADAPTATION_RUN_STARTED)
    assert (event.actor, event.object_id) == (administrator, str(run.pk))
    assert event.after["class_counts"]["MONOCYTE"] == 6 and event.after["signed_only"] is True


def test_a_second_adaptation_is_refused_while_one_is_unfinished(lab, administrator, sent):
    first = lab_adaptation_start(actor=administrator, selection=LabCellSelection())

    with pytest.raises(AdaptationError, match=f"run {first.pk} is queued: one adaptation at a time"):
        lab_adaptation_start(actor=administrator, selection=LabCellSelection())
    assert AdaptationRun.objects.count() == 1


def test_the_database_refuses_two_unfinished_runs(lab, administrator, model_version, sent):
    lab_adaptation_start(actor=administrator, selection=LabCellSelection())

    with pytest.raises(IntegrityError), transaction.atomic():
        AdaptationRun.objects.create(base_model_version=model_version, status=AdaptationRunStatus.RUNNING)


def test_cancelling_a_queued_run_ends_it_at_once_audited(lab, administrator, sent):
    run = lab_adaptation_start(actor=administrator, selection=LabCellSelection())

    adaptation_run_cancel(actor=administrator, run=run)

    run.refresh_from_db()
    assert (run.status, run.cancel_requested) == (AdaptationRunStatus.CANCELLED, True)
    actions = list(
        AuditEvent.objects.filter(object_id=str(run.pk)).order_by("id").values_list("action", flat=True)
    )
    assert actions[-2:] == [AuditAction.ADAPTATION_RUN_CANCEL_REQUESTED, AuditAction.ADAPTATION_RUN_FINISHED]
    assert AuditEvent.objects.get(action=AuditAction.ADAPTATION_RUN_FINISHED).actor == administrator
    with pytest.raises(AdaptationError, match="already finished"):
        adaptation_run_cancel(actor=administrator, run=run)
    # A finished run no longer blocks the next one.
    assert lab_adaptation_start(actor=administrator, selection=LabCellSelection()).status == "queued"


def test_the_admin_page_shows_the_counts_and_starts_a_run(lab, administrator_client, sent):
    page = administrator_client.get(reverse("review:lab_adaptation"))

    html = page.content.decode()
    assert page.status_code == 200 and 'data-class="MONOCYTE">6<' in html and "adaptation-start" in html
    response = administrator_client.post(
        reverse("review:lab_adaptation"), {"selection": "1", "signed_only": "on"}
    )

    run = AdaptationRun.objects.get()
    assert response["Location"] == reverse("classifier:adaptation_run_detail", args=[run.pk])
    assert (
        "Start the adaptation"
        not in administrator_client.get(reverse("review:lab_adaptation")).content.decode()
    )


def test_the_admin_page_says_why_it_refuses(model_version, lab_staff, pathologist, administrator_client):
    lab_make(base=model_version, lab_staff=lab_staff, pathologist=pathologist, per_class=3)

    html = administrator_client.get(reverse("review:lab_adaptation")).content.decode()

    assert "adaptation-refusal" in html and "adaptation-start" not in html
    response = administrator_client.post(
        reverse("review:lab_adaptation"), {"selection": "1", "signed_only": "on"}
    )
    assert response.status_code == 409 and not AdaptationRun.objects.exists()


def test_the_api_counts_starts_polls_and_cancels(lab, administrator, sent):
    client = _api(administrator)

    counts = client.get("/api/adaptation-runs/lab-cells/", {"signed_only": "true"}).json()
    started = client.post("/api/adaptation-runs/", {"signed_only": True}, format="json")
    polled = client.get(f"/api/adaptation-runs/{started.json()['id']}/").json()
    cancelled = client.post(f"/api/adaptation-runs/{started.json()['id']}/cancel/")

    assert counts == {
        "class_counts": dict.fromkeys(["EOSINOPHIL", "LYMPHOCYTE", "MONOCYTE", "NEUTROPHIL"], 6),
        "total": 24,
        "slides": 3,
        "minimum_per_class": 5,
        "refusal": "",
    }
    assert started.status_code == 202 and polled["status"] == "queued" and polled["percent"] == 0
    assert polled["base_model_version"] == "review-test" and polled["started_by"] == "admin"
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")


def test_the_api_refuses_a_second_run_and_bad_dates(lab, administrator, sent):
    client = _api(administrator)
    client.post("/api/adaptation-runs/", {}, format="json")

    second = client.post("/api/adaptation-runs/", {}, format="json")
    dates = client.post(
        "/api/adaptation-runs/", {"date_from": "2026-02-02", "date_to": "2026-01-01"}, format="json"
    )

    assert second.status_code == 400 and "one adaptation at a time" in str(second.json())
    assert dates.status_code == 400 and AdaptationRun.objects.count() == 1


@pytest.mark.parametrize("role", ["lab_staff", "pathologist", "outsider"])
def test_only_admins_adapt(request, lab, role, sent):
    user = request.getfixturevalue(role)

    assert _api(user).post("/api/adaptation-runs/", {}, format="json").status_code == 403
    with pytest.raises(PermissionError):
        lab_adaptation_start(actor=user, selection=LabCellSelection())
    assert not AdaptationRun.objects.exists()


def test_a_signed_slides_cells_stay_signed(lab):
    from cases.models import Slide

    assert set(Slide.objects.values_list("status", flat=True)) == {SlideStatus.SIGNED}

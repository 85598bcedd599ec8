"""An adaptation run executed in this process on the tiny model (the worker's code, no worker):
candidate registered but not active, activation with the password, roll-back, comparison page,
cancellation, the sweep after a lost worker. tests/integration/test_adaptation_pipeline.py runs the
same through a real training worker."""

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditAction, AuditEvent
from classifier import adaptation, services
from classifier.adapter import Progress
from classifier.models import AdaptationRun, AdaptationRunStatus, InferenceJob, ModelVersion
from review.adaptation import LabCellSelection, lab_adaptation_start
from tests.adaptation_lab import FAST_ADAPTATION_OPTIONS, lab_make
from tests.conftest import PASSWORD
from tests.factories import reauth_request

pytestmark = pytest.mark.django_db


@pytest.fixture
def fast(settings, tmp_path) -> Path:
    settings.HEMATOVISION_ADAPTATION_OPTIONS = json.loads(FAST_ADAPTATION_OPTIONS)
    settings.HEMATOVISION_ADAPTATION_WORK_ROOT = tmp_path / "work"
    return tmp_path / "work"


@pytest.fixture
def lab(model_version, lab_staff, pathologist) -> dict:
    return lab_make(base=model_version, lab_staff=lab_staff, pathologist=pathologist, per_class=6)


@pytest.fixture
def run(lab, administrator, fast) -> AdaptationRun:
    return lab_adaptation_start(actor=administrator, selection=LabCellSelection(), enqueue=False)


def _actions(target) -> list[str]:  # noqa: ANN001
    return list(
        AuditEvent.objects.filter(object_type=target._meta.label_lower, object_id=str(target.pk))
        .order_by("id")
        .values_list("action", flat=True)
    )


def test_a_run_registers_a_candidate_that_serves_nothing_until_activated(
    run, model_version, models_root, fast
):
    messages = []

    finished = adaptation.adaptation_run_execute(run_id=run.pk, echo=messages.append)

    assert (finished.status, finished.percent, finished.error) == (AdaptationRunStatus.SUCCEEDED, 100, "")
    candidate = finished.result_model_version
    assert (candidate.is_candidate, candidate.is_active, candidate.parent) == (True, False, model_version)
    assert candidate.name == f"tiny-test-lab-r{run.pk}"
    assert candidate.directory == f"adapted/{candidate.name}"
    assert (models_root / "adapted" / candidate.name / "model_card.json").is_file()
    assert ModelVersion.objects.get(is_active=True) == model_version
    assert candidate.metrics["validation"]["lab_holdout"]["adapted"]["n"] >= 4
    assert not (fast / f"run-{run.pk}").exists(), "the copy of the lab's cells is deleted"
    assert any(message.startswith("train: epoch 2/2") for message in messages)
    assert _actions(run) == [AuditAction.ADAPTATION_RUN_STARTED, AuditAction.ADAPTATION_RUN_FINISHED]
    registered = AuditEvent.objects.get(
        action=AuditAction.MODEL_VERSION_REGISTERED, object_id=str(candidate.pk)
    )
    assert registered.after["candidate"] is True and registered.after["parent"] == "tiny-test"
    # A second delivery of the message is a no-op.
    assert adaptation.adaptation_run_execute(run_id=run.pk) is None


def test_the_cells_are_exported_by_slide_so_whole_slides_are_held_out(run, fast, lab):
    target = fast / "export-check"

    assert adaptation.cells_export(run, target) == 0

    names = sorted(path.name for path in (target / "MONOCYTE").iterdir())
    assert names == sorted(f"{image.slide_id}__{image.pk}.png" for image in lab["MONOCYTE"])


def test_activation_needs_the_password_and_a_roll_back_is_audited(
    run, model_version, administrator, lab_staff
):
    candidate = adaptation.adaptation_run_execute(run_id=run.pk).result_model_version
    job = InferenceJob.objects.filter(model_version=model_version).first()
    assert job is not None

    with pytest.raises(services.ModelActivationRefused, match="password is not correct"):
        services.model_version_activate_confirmed(
            actor=administrator, model_version=candidate, password="wrong", request=reauth_request()
        )
    assert ModelVersion.objects.get(is_active=True) == model_version
    services.model_version_activate_confirmed(
        actor=administrator, model_version=candidate, password=PASSWORD, request=reauth_request()
    )
    candidate.refresh_from_db()
    assert (candidate.is_active, candidate.is_candidate) == (True, False)
    services.model_version_activate_confirmed(
        actor=administrator, model_version=model_version, password=PASSWORD, request=reauth_request()
    )

    assert ModelVersion.objects.get(is_active=True) == model_version
    assert _actions(candidate) == [
        AuditAction.MODEL_VERSION_REGISTERED,
        AuditAction.MODEL_VERSION_ACTIVATE_REFUSED,
        AuditAction.MODEL_VERSION_ACTIVATED,
    ]
    rolled_back = AuditEvent.objects.filter(action=AuditAction.MODEL_VERSION_ROLLED_BACK).get()
    assert (rolled_back.actor, rolled_back.before, rolled_back.after) == (
        administrator,
        {"active": candidate.name},
        {"active": "tiny-test"},
    )
    # Jobs keep the version they ran with.
    assert InferenceJob.objects.get(pk=job.pk).model_version == model_version
    with pytest.raises(PermissionError):
        services.model_version_activate_confirmed(
            actor=lab_staff, model_version=candidate, password=PASSWORD, request=reauth_request()
        )


def test_the_activation_page_and_api_ask_for_the_password(
    run, model_version, administrator, administrator_client
):
    candidate = adaptation.adaptation_run_execute(run_id=run.pk).result_model_version
    url = reverse("classifier:model_version_activate", args=[candidate.pk])

    assert 'type="password"' in administrator_client.get(url).content.decode()
    wrong = administrator_client.post(url, {"password": "nope"})
    assert wrong.status_code == 400 and "password is not correct" in wrong.content.decode()
    api = APIClient()
    api.force_authenticate(administrator)
    assert api.post(f"/api/model-versions/{candidate.pk}/activate/", {}).status_code == 400
    assert api.get("/api/model-versions/?candidate=true").json()["results"][0]["name"] == candidate.name
    response = api.post(f"/api/model-versions/{candidate.pk}/activate/", {"password": PASSWORD})

    assert (response.status_code, response.json()["is_active"], response.json()["parent"]) == (
        200,
        True,
        "tiny-test",
    )
    assert api.get("/api/model-versions/?candidate=true").json()["results"] == []
    refused = AuditEvent.objects.filter(action=AuditAction.MODEL_VERSION_ACTIVATE_REFUSED)
    assert refused.count() == 1 and refused.get().after["cause"] == "wrong password"


def test_the_comparison_page_shows_parent_and_candidate_from_the_card(run, administrator_client, lab_client):
    candidate = adaptation.adaptation_run_execute(run_id=run.pk).result_model_version
    held_out = candidate.metrics["validation"]["lab_holdout"]

    html = administrator_client.get(
        reverse("classifier:model_version_compare", args=[candidate.pk])
    ).content.decode()

    assert 'data-comparison="lab_holdout"' in html and "val_kaggle" not in html  # no source data mixed here
    assert (
        f"{held_out['adapted']['accuracy']:.3f}" in html and f"{held_out['parent']['macro_f1']:.3f}" in html
    )
    assert "F1 Monocyte" in html and "compare-activate" in html
    assert 'id="adaptation-facts"' in html and "whole slides" in html
    assert (
        "compare-activate"
        not in lab_client.get(
            reverse("classifier:model_version_compare", args=[candidate.pk])
        ).content.decode()
    )
    listing = administrator_client.get(reverse("classifier:model_version_list")).content.decode()
    assert "candidate</span>" in listing and reverse("review:lab_adaptation") in listing
    # The candidate's row says so and leads to its comparison with the parent.
    assert reverse("classifier:model_version_compare", args=[candidate.pk]) in listing


def test_the_run_page_and_progress_follow_the_run(run, administrator_client):
    progress_url = reverse("classifier:adaptation_run_progress", args=[run.pk])
    assert administrator_client.get(progress_url).json()["status"] == "queued"

    adaptation.adaptation_run_execute(run_id=run.pk)

    polled = administrator_client.get(progress_url).json()
    assert (polled["status"], polled["finished"], polled["percent"]) == ("succeeded", True, 100)
    html = administrator_client.get(
        reverse("classifier:adaptation_run_detail", args=[run.pk])
    ).content.decode()
    assert "adaptation-candidate" in html and polled["result_model_version"] in html


def test_cancelling_a_running_run_stops_it_and_registers_nothing(run, monkeypatch, models_root):
    monkeypatch.setattr(adaptation, "CANCEL_CHECK_SECONDS", 0)

    def cancel_at_training(message: str) -> None:
        if message.startswith("train:"):
            adaptation.adaptation_run_cancel(actor=None, run=run)

    finished = adaptation.adaptation_run_execute(run_id=run.pk, echo=cancel_at_training)

    assert (finished.status, finished.result_model_version) == (AdaptationRunStatus.CANCELLED, None)
    assert ModelVersion.objects.filter(is_candidate=True).count() == 0
    assert list((models_root / "adapted").iterdir()) == []
    assert _actions(run)[-2:] == [
        AuditAction.ADAPTATION_RUN_CANCEL_REQUESTED,
        AuditAction.ADAPTATION_RUN_FINISHED,
    ]


def test_cells_missing_from_storage_leave_too_few_and_the_run_fails_with_the_reason(run, lab):
    for image in lab["EOSINOPHIL"][:2]:
        default_storage.delete(image.file.name)

    finished = adaptation.adaptation_run_execute(run_id=run.pk)

    assert finished.status == AdaptationRunStatus.FAILED
    assert "EOSINOPHIL 4" in finished.error and not ModelVersion.objects.filter(is_candidate=True).exists()


def test_the_sweep_fails_a_run_whose_worker_died_and_removes_what_it_left(run, models_root, fast):
    AdaptationRun.objects.filter(pk=run.pk).update(
        status=AdaptationRunStatus.RUNNING, heartbeat_at=timezone.now() - timezone.timedelta(minutes=5)
    )
    partial = models_root / "adapted" / f".tiny-test-lab-r{run.pk}.partial-4242"
    (partial / "half").mkdir(parents=True)
    unregistered = models_root / "adapted" / f"tiny-test-lab-r{run.pk}"  # renamed, then the worker died
    unregistered.mkdir()
    (fast / f"run-{run.pk}" / "MONOCYTE").mkdir(parents=True)

    assert adaptation.adaptation_runs_fail_silent(silent_for=timezone.timedelta(seconds=30)) == [run.pk]

    run.refresh_from_db()
    assert run.status == AdaptationRunStatus.FAILED and "killed or lost" in run.error
    assert not partial.exists() and not unregistered.exists() and not (fast / f"run-{run.pk}").exists()
    assert not ModelVersion.objects.filter(is_candidate=True).exists()
    finished = AuditEvent.objects.get(action=AuditAction.ADAPTATION_RUN_FINISHED)
    assert (finished.actor_username, finished.after["status"]) == ("sweep", "failed")
    # The message redelivered later finds the run finished: nothing runs.
    assert adaptation.adaptation_run_execute(run_id=run.pk) is None


def test_a_live_run_is_not_swept(run):
    AdaptationRun.objects.filter(pk=run.pk).update(
        status=AdaptationRunStatus.RUNNING, heartbeat_at=timezone.now()
    )

    assert adaptation.adaptation_runs_fail_silent(silent_for=timezone.timedelta(seconds=30)) == []


def test_progress_maps_stages_and_training_steps_onto_the_bar():
    assert adaptation.adaptation_percent(Progress("read", "lab cells")) == 3
    assert adaptation.adaptation_percent(Progress("train", "step 80/160 loss 1.0", 80, 160)) == 46
    assert adaptation.adaptation_percent(Progress("done", "wrote")) == 99


def test_model_adapt_runs_in_the_command_and_prints_progress(lab, administrator, fast):
    out = StringIO()

    call_command("model_adapt", "--user", "admin", stdout=out)

    text = out.getvalue()
    run = AdaptationRun.objects.get()
    assert run.status == AdaptationRunStatus.SUCCEEDED and run.started_by == administrator
    assert "Verified cells: {'EOSINOPHIL': 6" in text and "train: epoch 1/2" in text
    assert f"candidate {run.result_model_version.name} registered" in text


def test_model_adapt_refuses_with_the_reason(model_version, lab_staff, pathologist, fast):
    lab_make(base=model_version, lab_staff=lab_staff, pathologist=pathologist, per_class=2)

    with pytest.raises(CommandError, match="fewer for EOSINOPHIL 2"):
        call_command("model_adapt", stdout=StringIO())
    with pytest.raises(CommandError, match="not an active admin"):
        call_command("model_adapt", "--user", "lab", stdout=StringIO())
    assert not AdaptationRun.objects.exists()

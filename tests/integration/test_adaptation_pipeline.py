"""Adapting the model to the lab through a real training worker (its own queue, concurrency 1) on
the tiny model: gather, train, candidate, compare, activate, roll back, audit; cancellation; a
worker killed mid-training leaves a failed run and nothing registered."""

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from audit.models import AuditAction, AuditEvent
from classifier.models import AdaptationRun, AdaptationRunStatus, ModelVersion
from classifier.services import model_version_register
from tests.adaptation_lab import FAST_ADAPTATION_OPTIONS, lab_make
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Long enough to be caught training (about a second per step on the tiny model is far more than
# needed): the test cancels or kills it long before the end.
SLOW_ADAPTATION_OPTIONS = json.dumps(
    {**json.loads(FAST_ADAPTATION_OPTIONS), "epochs": 500, "steps_per_epoch": 8}
)
# The sweep notices a silent run within seconds.
FAST_SWEEP = {
    "HEMATOVISION_JOB_HEARTBEAT_SECONDS": "1",
    "HEMATOVISION_JOB_SILENT_SECONDS": "3",
    "HEMATOVISION_ADAPTATION_SILENT_SECONDS": "3",
    "HEMATOVISION_DISPATCH_SWEEP_INTERVAL_SECONDS": "1",
}


@pytest.fixture
def base(tiny_model_dir) -> ModelVersion:
    return model_version_register(directory=tiny_model_dir)


@pytest.fixture
def lab(base, lab_staff, pathologist) -> dict:
    return lab_make(base=base, lab_staff=lab_staff, pathologist=pathologist, per_class=6)


def _api(user) -> APIClient:  # noqa: ANN001
    client = APIClient()
    client.force_authenticate(user)
    return client


def _wait(
    run_id: int, done: Callable[[AdaptationRun], bool], timeout: float, log: Callable[[], str]
) -> AdaptationRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = AdaptationRun.objects.get(pk=run_id)
        if done(run):
            return run
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} is {run.status}/{run.stage} after {timeout}s:\n{log()}")


def test_the_lab_flow_through_a_training_worker(
    lab, base, administrator, make_training_worker, tiny_model_dir
):
    worker = make_training_worker(
        HEMATOVISION_ADAPTATION_OPTIONS=FAST_ADAPTATION_OPTIONS, HEMATOVISION_MODEL_DIR=str(tiny_model_dir)
    )
    api = _api(administrator)
    assert api.get("/api/adaptation-runs/lab-cells/").json()["refusal"] == ""

    started = time.monotonic()
    response = api.post("/api/adaptation-runs/", {"signed_only": True}, format="json")
    assert response.status_code == 202
    run = _wait(response.json()["id"], lambda r: r.is_finished, 300, worker.log_tail)
    elapsed = time.monotonic() - started

    assert (run.status, run.error, run.percent) == (AdaptationRunStatus.SUCCEEDED, "", 100), run.error
    print(f"adaptation through the training worker: {elapsed:.1f} s for {run.cell_count} cells")
    candidate = run.result_model_version
    assert (candidate.is_candidate, candidate.is_active, candidate.parent) == (True, False, base)
    assert [v["name"] for v in api.get("/api/model-versions/?candidate=true").json()["results"]] == [
        candidate.name
    ]

    browser = Client()
    browser.force_login(administrator)
    comparison = browser.get(
        reverse("classifier:model_version_compare", args=[candidate.pk])
    ).content.decode()
    accuracy = candidate.metrics["validation"]["lab_holdout"]["adapted"]["accuracy"]
    assert 'data-comparison="lab_holdout"' in comparison and f"{accuracy:.3f}" in comparison

    activate = f"/api/model-versions/{candidate.pk}/activate/"
    assert api.post(activate, {"password": "not-it"}).status_code == 400
    assert ModelVersion.objects.get(is_active=True) == base
    assert api.post(activate, {"password": PASSWORD}).json()["is_active"] is True
    rollback = api.post(f"/api/model-versions/{base.pk}/activate/", {"password": PASSWORD})
    assert (rollback.status_code, rollback.json()["is_active"]) == (200, True)

    trail = list(AuditEvent.objects.order_by("id").values_list("action", "object_id", "actor_username"))
    assert (AuditAction.ADAPTATION_RUN_STARTED, str(run.pk), "admin") in trail
    assert (AuditAction.ADAPTATION_RUN_FINISHED, str(run.pk), "training-worker") in trail
    assert (AuditAction.MODEL_VERSION_REGISTERED, str(candidate.pk), "admin") in trail
    assert (AuditAction.MODEL_VERSION_ACTIVATE_REFUSED, str(candidate.pk), "admin") in trail
    assert (AuditAction.MODEL_VERSION_ACTIVATED, str(candidate.pk), "admin") in trail
    assert (AuditAction.MODEL_VERSION_ROLLED_BACK, str(base.pk), "admin") in trail


def test_cancelling_and_killing_a_training_run_register_nothing(
    lab, administrator, make_training_worker, tiny_model_dir, models_root, settings
):
    environment = {
        "HEMATOVISION_ADAPTATION_OPTIONS": SLOW_ADAPTATION_OPTIONS,
        "HEMATOVISION_MODEL_DIR": str(tiny_model_dir),
        **FAST_SWEEP,
    }
    worker = make_training_worker(**environment)
    api = _api(administrator)
    training = lambda run: run.stage == "train" or run.is_finished  # noqa: E731

    first = api.post("/api/adaptation-runs/", {}, format="json").json()["id"]
    _wait(first, training, 120, worker.log_tail)
    assert api.post(f"/api/adaptation-runs/{first}/cancel/").status_code == 200
    cancelled = _wait(first, lambda r: r.is_finished, 60, worker.log_tail)
    assert cancelled.status == AdaptationRunStatus.CANCELLED

    second = api.post("/api/adaptation-runs/", {}, format="json").json()["id"]
    assert api.post("/api/adaptation-runs/", {}, format="json").status_code == 400  # one at a time
    _wait(second, training, 120, worker.log_tail)
    worker.kill()
    assert AdaptationRun.objects.get(pk=second).status == AdaptationRunStatus.RUNNING
    sweeper = make_training_worker(**environment)
    failed = _wait(second, lambda r: r.is_finished, 60, sweeper.log_tail)

    assert failed.status == AdaptationRunStatus.FAILED and "killed or lost" in failed.error
    assert not ModelVersion.objects.filter(is_candidate=True).exists()
    assert list((models_root / "adapted").iterdir()) == [], "no model directory, not even a partial one"
    assert not (Path(settings.HEMATOVISION_ADAPTATION_WORK_ROOT) / f"run-{second}").exists()
    # The lab can adapt again at once.
    assert api.post("/api/adaptation-runs/", {}, format="json").status_code == 202

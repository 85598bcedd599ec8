"""Issue 11, finding 7: /health/ said "ok" with the model missing, a model file corrupted or
Redis down. /health/ stays liveness; /ready/ checks the database, the broker, a worker answering
and the active model's files, and answers 503 naming what failed."""

import pytest
from celery import current_app
from django.test import Client
from django.urls import reverse

from classifier.adapter import model_directory_digest, model_directory_hashes
from classifier.models import ModelVersion

pytestmark = pytest.mark.django_db


@pytest.fixture
def worker_answers(monkeypatch):
    monkeypatch.setattr(current_app.control, "ping", lambda **kwargs: [{"celery@test": {"ok": "pong"}}])


@pytest.fixture
def active_model(settings, tmp_path) -> ModelVersion:
    settings.HEMATOVISION_MODELS_ROOT = tmp_path
    directory = tmp_path / "wbc-test"
    directory.mkdir()
    (directory / "model.keras").write_bytes(b"weights")
    (directory / "card.json").write_text("{}")
    hashes = model_directory_hashes(directory)
    return ModelVersion.objects.create(
        name="wbc-test",
        directory="wbc-test",
        sha256=model_directory_digest(hashes),
        file_hashes=hashes,
        review_threshold=0.9,
        is_active=True,
    )


def ready() -> tuple[int, dict]:
    response = Client().get(reverse("ready"))
    return response.status_code, response.json()


def test_ready_when_database_broker_worker_and_model_all_pass(worker_answers, active_model):
    assert ready() == (200, {"status": "ready", "checked": ["database", "broker", "worker", "model"]})


def test_a_corrupted_model_file_makes_the_instance_not_ready_while_health_stays_ok(
    worker_answers, active_model, tmp_path
):
    (tmp_path / "wbc-test" / "model.keras").write_bytes(b"tampered")
    status, body = ready()
    assert (status, body["problems"]) == (
        503,
        {"model": "wbc-test: files missing or changed since registration (sha256 mismatch)"},
    )
    assert Client().get(reverse("health")).json() == {"status": "ok"}


def test_no_active_model_and_no_worker_are_named(db):
    status, body = ready()
    assert status == 503
    assert body["problems"] == {"worker": "no worker answered a ping", "model": "no model version is active"}


def test_a_broker_that_is_down_is_named(worker_answers, active_model, settings, monkeypatch):
    monkeypatch.setattr(current_app.conf, "broker_url", "redis://127.0.0.1:1/0")
    status, body = ready()
    assert status == 503
    assert body["problems"]["broker"].startswith("unreachable")

"""Fixtures for tests that need a real `celery worker` subprocess: PostgreSQL rows committed for it,
the test's Redis database as its broker, the real model loaded. Imported by the conftest of each
tier that uses them (tests/integration, tests/devtools, tests/proof/chaos, tests/proof/e2e).

``make_training_worker`` starts a worker of the training queue (adaptation runs, concurrency 1),
on a queue name of the test's own; it registers no model itself (the test registers its base)."""

import os
from collections.abc import Callable, Iterator

import pytest
from django.db import connection

from classifier.models import ModelVersion
from classifier.services import model_version_register
from devtools.benchmark import WorkerProcess, queue_name_unique
from hematovision_site.celery import app as celery_app
from ml.paths import default_model_dir
from ml.testing import make_tiny_model_dir


def _database_url() -> str:
    """The test database pytest-django created, for a process outside this one."""
    database = connection.settings_dict
    credentials = database["USER"] + (f":{database['PASSWORD']}" if database["PASSWORD"] else "")
    return f"postgres://{credentials}@{database['HOST']}:{database['PORT'] or 5432}/{database['NAME']}"


@pytest.fixture
def serving_model(transactional_db, settings, tmp_path) -> ModelVersion:
    """The committed default model. HEMATOVISION_INTEGRATION_TINY_MODEL=1 swaps in a tiny
    untrained one for a quick local run of the plumbing (the accuracy check then fails)."""
    if os.environ.get("HEMATOVISION_INTEGRATION_TINY_MODEL") != "1":
        return model_version_register(directory=default_model_dir())
    settings.HEMATOVISION_MODELS_ROOT = tmp_path / "models"
    return model_version_register(directory=make_tiny_model_dir(tmp_path / "models" / "tiny-test"))


@pytest.fixture
def worker_queue() -> Iterator[str]:
    """A queue of this test's own, so no other worker on the same Redis takes its tasks."""
    queue = queue_name_unique("inference-test")
    previous = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = queue
    yield queue
    celery_app.conf.task_default_queue = previous
    with celery_app.connection_for_write() as broker:
        broker.default_channel.client.delete(queue)


def _worker_environment(settings) -> dict[str, str]:  # noqa: ANN001
    return {
        "DJANGO_SETTINGS_MODULE": "hematovision_site.settings.test",
        "DATABASE_URL": _database_url(),
        "TEST_REDIS_URL": settings.CELERY_BROKER_URL,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "HEMATOVISION_MODELS_ROOT": str(settings.HEMATOVISION_MODELS_ROOT),
        "HEMATOVISION_MODEL_DIR": str(default_model_dir()),
        "HEMATOVISION_TRAINING_QUEUE": settings.HEMATOVISION_TRAINING_QUEUE,
        "HEMATOVISION_ADAPTATION_WORK_ROOT": str(settings.HEMATOVISION_ADAPTATION_WORK_ROOT),
    }


@pytest.fixture
def training_queue(settings, tmp_path) -> Iterator[str]:
    """A training queue of this test's own: adaptation runs are sent there, and its worker
    consumes only it (as `make run`'s training worker consumes `training`)."""
    queue = queue_name_unique("training-test")
    settings.HEMATOVISION_TRAINING_QUEUE = queue
    settings.HEMATOVISION_ADAPTATION_WORK_ROOT = tmp_path / "adaptation-work"
    yield queue
    with celery_app.connection_for_write() as broker:
        broker.default_channel.client.delete(queue)


@pytest.fixture
def make_training_worker(
    transactional_db, training_queue, settings, tmp_path
) -> Iterator[Callable[..., WorkerProcess]]:
    workers: list[WorkerProcess] = []

    def make(**extra_environment: str) -> WorkerProcess:
        worker = WorkerProcess(
            queue=training_queue,
            environment={**_worker_environment(settings), **extra_environment},
            log_path=tmp_path / "training-worker.log",
            concurrency=1,
        )
        workers.append(worker)
        worker.start()
        return worker

    yield make
    for worker in workers:
        worker.stop()


@pytest.fixture
def make_worker(serving_model, worker_queue, settings, tmp_path) -> Iterator[Callable[..., WorkerProcess]]:
    workers: list[WorkerProcess] = []
    environment = _worker_environment(settings)

    def make(*, concurrency: int = 1, **extra_environment: str) -> WorkerProcess:
        worker = WorkerProcess(
            queue=worker_queue,
            environment={**environment, **extra_environment},
            log_path=tmp_path / "worker.log",
            concurrency=concurrency,
        )
        workers.append(worker)
        worker.start()
        return worker

    yield make
    for worker in workers:
        worker.stop()

"""Real parts for the integration tier: PostgreSQL rows committed for a `celery worker`
subprocess that talks to the test's Redis database and loads the real model."""

import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from classifier.models import ModelVersion
from classifier.services import model_version_register
from hematovision_site.celery import app as celery_app
from ml.paths import default_model_dir
from ml.testing import make_tiny_model_dir

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
WORKER_READY_SECONDS = 60


def shared_test_images(count: int) -> list[Path]:
    """Count images from the shared TEST split, taking the four classes in turn."""
    root = Path(settings.HEMATOVISION_DATA_DIR) / "blood-cells" / "images" / "TEST"
    folders = sorted(path for path in root.iterdir() if path.is_dir())
    per_class = [sorted(folder.glob("*.jp*g")) for folder in folders]
    return [per_class[index % len(folders)][index // len(folders)] for index in range(count)]


def _database_url() -> str:
    """The test database pytest-django created, for a process outside this one."""
    database = connection.settings_dict
    credentials = database["USER"] + (f":{database['PASSWORD']}" if database["PASSWORD"] else "")
    return f"postgres://{credentials}@{database['HOST']}:{database['PORT'] or 5432}/{database['NAME']}"


@pytest.fixture
def serving_model(transactional_db, settings, tmp_path) -> ModelVersion:
    """The real default model; a tiny one only while the default is not committed yet (or when
    HEMATOVISION_INTEGRATION_TINY_MODEL=1 asks for a quick run)."""
    if default_model_dir().is_dir() and os.environ.get("HEMATOVISION_INTEGRATION_TINY_MODEL") != "1":
        return model_version_register(directory=default_model_dir())
    logger.warning("Integration tier on a tiny untrained model, not the default model.")
    settings.HEMATOVISION_MODELS_ROOT = tmp_path / "models"
    return model_version_register(directory=make_tiny_model_dir(tmp_path / "models" / "tiny-test"))


class Worker:
    """One `celery worker` process (own session, so SIGKILL takes its pool children too)."""

    def __init__(self, queue: str, environment: dict[str, str], log_path: Path, concurrency: int) -> None:
        self.name = f"{queue}@{socket.gethostname()}"
        self._command = [
            sys.executable, "-m", "celery", "-A", "hematovision_site", "worker",
            "-Q", queue, "-n", f"{queue}@%h", "--pool", "prefork", "--concurrency", str(concurrency),
            "--without-gossip", "--without-mingle", "--loglevel", "INFO",
        ]  # fmt: skip
        self._environment = environment
        self._log_path = log_path
        self._process: subprocess.Popen | None = None

    def start(self) -> None:
        log = self._log_path.open("ab")
        self._process = subprocess.Popen(
            self._command,
            cwd=PROJECT_ROOT,
            env=self._environment,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        deadline = time.monotonic() + WORKER_READY_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"celery worker exited: {self._log_path.read_text()[-3000:]}")
            if celery_app.control.ping(destination=[self.name], timeout=0.5):
                return
        raise RuntimeError(
            f"celery worker not ready in {WORKER_READY_SECONDS}s: {self._log_path.read_text()[-3000:]}"
        )

    def kill(self) -> None:
        """SIGKILL to the worker and its pool processes: no clean shutdown, no message requeued."""
        os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait(timeout=10)

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        os.killpg(self._process.pid, signal.SIGTERM)
        try:
            self._process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()


@pytest.fixture
def worker_queue() -> Iterator[str]:
    """A queue of this test's own, so no other worker on the same Redis takes its tasks."""
    queue = f"inference-test-{uuid.uuid4().hex[:8]}"
    previous = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = queue
    yield queue
    celery_app.conf.task_default_queue = previous
    with celery_app.connection_for_write() as broker:
        broker.default_channel.client.delete(queue)


@pytest.fixture
def make_worker(serving_model, worker_queue, settings, tmp_path) -> Iterator[Callable[..., Worker]]:
    workers: list[Worker] = []
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "hematovision_site.settings.test",
        "DATABASE_URL": _database_url(),
        "TEST_REDIS_URL": settings.CELERY_BROKER_URL,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "HEMATOVISION_MODELS_ROOT": str(settings.HEMATOVISION_MODELS_ROOT),
        "HEMATOVISION_MODEL_DIR": str(default_model_dir()),
    }

    def make(*, concurrency: int = 1, **extra_environment: str) -> Worker:
        worker = Worker(
            worker_queue, {**environment, **extra_environment}, tmp_path / "worker.log", concurrency
        )
        workers.append(worker)
        worker.start()
        return worker

    yield make
    for worker in workers:
        worker.stop()

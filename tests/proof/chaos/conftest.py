"""Chaos tier: a real `celery worker` with the default model, on a private `redis-server` of its
own that a test may kill and start again, and slides of shared TEST cells for it to classify.

HEMATOVISION_CHAOS_CELLS sets how many cells each test classifies (CI: 40; the full run: 200),
HEMATOVISION_CHAOS_REDIS_DOWN_SECONDS how long Redis stays down before it is started again (3).
"""

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import kombu.pools
import pytest
import redis
from django.utils import timezone

from accounts.models import User
from cases.models import Patient, Sex, Slide
from cases.services import cell_image_create, patient_create, slide_create
from cases.uploads import UploadLimits, image_validate
from devtools.benchmark import WorkerProcess, shared_test_images
from hematovision_site.celery import app as celery_app
from tests.worker_fixtures import make_worker, serving_model, worker_queue  # noqa: F401  (fixtures)

CELLS_PER_SLIDE = 25
READY_SECONDS = 10
REPORT_KEY = pytest.StashKey[list[str]]()


@pytest.fixture
def chaos_cell_count() -> int:
    return int(os.environ.get("HEMATOVISION_CHAOS_CELLS", "40"))


@pytest.fixture
def redis_down_seconds() -> float:
    return float(os.environ.get("HEMATOVISION_CHAOS_REDIS_DOWN_SECONDS", "3"))


class PrivateBroker:
    """A `redis-server` that keeps nothing on disk, so a restart loses every queued message: the
    worst case the product has to survive (no AOF, no snapshot). It is this process's broker too
    (publishing, control pings)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen | None = None

    def start(self) -> None:
        """Start on the same port every time; returns once it answers PING and this process's
        Celery app has fresh connections to it (those to a previous server are dead)."""
        self._process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
             "--save", "", "--appendonly", "no", "--logfile", str(self.directory / "redis.log")],
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    _broker_use(self.url)
                    return
            except redis.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {READY_SECONDS}s")

    def kill(self) -> None:
        """SIGKILL: no shutdown save, connections cut as by a crash."""
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=10)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=2)


def _broker_use(url: str) -> None:
    """Point this process's Celery app at a broker, with new connections."""
    celery_app.conf.broker_url = url
    kombu.pools.reset()  # closes and forgets every pooled connection and producer
    celery_app._after_fork()  # Celery's own way to drop the pools it holds


@pytest.fixture
def private_redis(tmp_path) -> Iterator[PrivateBroker]:
    directory = tmp_path / "redis"
    directory.mkdir()
    server = PrivateBroker(directory)
    previous = celery_app.conf.broker_url
    server.start()
    yield server
    _broker_use(previous)
    server.kill()


@pytest.fixture
def chaos_worker(private_redis, make_worker) -> Callable[[], WorkerProcess]:  # noqa: F811
    """Start a worker (concurrency 1) on the private Redis: broker and result backend, as in
    production where both are REDIS_URL. Batches of 5 cells, so a job runs long enough to be
    caught part-way; a 3 s visibility timeout so a killed worker's message comes back in seconds
    (production: HEMATOVISION_CELERY_VISIBILITY_TIMEOUT_SECONDS, an hour by default)."""
    environment = {
        "TEST_REDIS_URL": private_redis.url,
        "HEMATOVISION_INFERENCE_BATCH_SIZE": "5",
        "HEMATOVISION_CELERY_VISIBILITY_TIMEOUT_SECONDS": "3",
        "HEMATOVISION_CELERY_RESTORE_INTERVAL_SECONDS": "1",
    }
    return lambda: make_worker(**environment)


@pytest.fixture
def chaos_slides(lab_staff: User, chaos_cell_count: int) -> list[Slide]:
    """chaos_cell_count distinct shared TEST cells over slides of 25 (one inference job each)."""
    patient = patient_create(
        actor=lab_staff, mrn="CHAOS-1", family_name="Chaos", given_name="Proof",
        date_of_birth=timezone.now().date().replace(year=1970), sex=Sex.UNKNOWN,
    )  # fmt: skip
    images = shared_test_images(chaos_cell_count)
    limits = UploadLimits.from_settings()
    slides = []
    for start in range(0, len(images), CELLS_PER_SLIDE):
        slide = _slide_create(lab_staff, patient, f"CHAOS-{start // CELLS_PER_SLIDE + 1}")
        for path in images[start : start + CELLS_PER_SLIDE]:
            image = image_validate(data=path.read_bytes(), original_filename=path.name, limits=limits)
            cell_image_create(actor=lab_staff, slide=slide, image=image)
        slides.append(slide)
    return slides


def _slide_create(actor: User, patient: Patient, accession_number: str) -> Slide:
    return slide_create(
        actor=actor,
        patient=patient,
        accession_number=accession_number,
        collected_at=timezone.now(),
        stain="wright",
    )


@pytest.fixture
def chaos_report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Measured figures, printed at the end of the run (they go into the README, never asserted)."""
    lines = request.config.stash.setdefault(REPORT_KEY, [])
    return lambda line: lines.append(f"{request.node.name}: {line}")


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:  # noqa: ANN001
    lines = config.stash.get(REPORT_KEY, [])
    if lines:
        terminalreporter.section("chaos measurements")
        for line in lines:
            terminalreporter.write_line(line)

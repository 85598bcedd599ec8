"""A `celery worker` run as a child process on a queue of its own: for the pipeline benchmark
and the integration tests, which must measure and exercise a real worker, not eager mode."""

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from celery import current_app as celery_app
from django.conf import settings

READY_SECONDS = 60


def shared_test_images(count: int) -> list[Path]:
    """Count distinct images of the shared TEST split (HEMATOVISION_DATA_DIR), classes in turn."""
    root = Path(settings.HEMATOVISION_DATA_DIR) / "blood-cells" / "images" / "TEST"
    per_class = [sorted(folder.glob("*.jp*g")) for folder in sorted(root.iterdir()) if folder.is_dir()]
    available = sum(len(images) for images in per_class)
    if count > available:
        raise ValueError(f"{root} holds {available} images, fewer than the {count} asked for.")
    interleaved = [image for group in itertools.zip_longest(*per_class) for image in group if image]
    return interleaved[:count]


def shared_test_fields(count: int) -> list[Path]:
    """The first ``count`` whole 640×480 fields of BCCD's test split (HEMATOVISION_DATA_DIR)."""
    data = Path(settings.HEMATOVISION_DATA_DIR)
    names = (data / "bccd-annotations" / "splits" / "test.txt").read_text().split()
    if count > len(names):
        raise ValueError(f"BCCD's test split holds {len(names)} fields, fewer than the {count} asked for.")
    return [data / "blood-cells" / "Original_Images" / f"{name}.jpg" for name in names[:count]]


def queue_name_unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class WorkerProcess:
    """One worker (own process group, so SIGKILL takes its pool processes too)."""

    def __init__(
        self, *, queue: str, environment: dict[str, str], log_path: Path, concurrency: int = 1
    ) -> None:
        self.queue = queue
        self.name = f"{queue}@{socket.gethostname()}"
        self._command = [
            sys.executable, "-m", "celery", "-A", "hematovision_site", "worker",
            "-Q", queue, "-n", f"{queue}@%h", "--pool", "prefork", "--concurrency", str(concurrency),
            "--without-gossip", "--without-mingle", "--loglevel", "INFO",
        ]  # fmt: skip
        self._environment = {**os.environ, **environment}
        self.log_path = log_path
        self._process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(  # noqa: S603  (our own interpreter and arguments)
                self._command,
                cwd=settings.BASE_DIR,
                env=self._environment,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"celery worker exited:\n{self.log_tail()}")
            if celery_app.control.ping(destination=[self.name], timeout=0.5):
                return
        raise RuntimeError(f"celery worker not ready within {READY_SECONDS}s:\n{self.log_tail()}")

    def log_tail(self, characters: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-characters:]

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, the message it holds stays unacknowledged."""
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

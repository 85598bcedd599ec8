"""A real Celery worker process, talking to Redis, answers a task."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from hematovision_site.celery import app, ping

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# A queue of its own: other test runs sharing the Redis database never see these messages.
QUEUE = f"test-ping-{os.getpid()}"


@pytest.fixture
def worker():
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "hematovision_site.settings.test"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "hematovision_site",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "WARNING",
            "--queues",
            QUEUE,
            "--hostname",
            f"test-{os.getpid()}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=PROJECT_ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    yield process
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def test_the_app_uses_the_configured_redis_and_reliable_delivery():
    assert app.conf.broker_url == settings.REDIS_URL
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1


@pytest.mark.slow
def test_a_worker_subprocess_answers_a_ping_through_redis(worker):
    started = time.monotonic()
    result = ping.apply_async(queue=QUEUE)
    assert result.get(timeout=60) == "pong"
    assert worker.poll() is None
    assert time.monotonic() - started < 60

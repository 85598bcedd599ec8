import base64
import json
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from classifier import broker_recovery, services
from classifier.models import (
    GradCam,
    GradCamStatus,
    InferenceJob,
    InferenceJobStatus,
    Prediction,
    QuickClassification,
    QuickClassificationStatus,
)
from hematovision_site.celery import app as celery_app
from tests.factories import inference_job_make


@pytest.fixture
def broker_client():
    with celery_app.connection_for_write() as connection:
        yield connection.default_channel.client


@pytest.fixture
def private_marker(monkeypatch, broker_client) -> str:
    """A key of this test's own, so workers of other tests on the same Redis are not disturbed."""
    key = f"test:broker-run-id:{uuid.uuid4().hex}"
    monkeypatch.setattr(broker_recovery, "BROKER_RUN_KEY", key)
    yield key
    broker_client.delete(key)


@pytest.fixture
def queue(broker_client) -> str:
    name = f"redispatch-test-{uuid.uuid4().hex[:8]}"
    yield name
    broker_client.delete(name)


def _messages(client, queue: str) -> list[tuple[str, list]]:
    """(task name, args) of every message in the queue, oldest first."""
    messages = [json.loads(raw) for raw in reversed(client.lrange(queue, 0, -1))]
    return [
        (message["headers"]["task"], json.loads(base64.b64decode(message["body"]))[0]) for message in messages
    ]


def test_only_the_first_caller_sees_a_redis_server_start_as_new(broker_client, private_marker):
    assert broker_recovery.broker_restarted(broker_client) is True
    assert broker_recovery.broker_restarted(broker_client) is False

    broker_client.set(private_marker, "run id of a previous server")  # e.g. restored from a snapshot
    assert broker_recovery.broker_restarted(broker_client) is True
    assert broker_recovery.broker_restarted(broker_client) is False


def test_every_unfinished_job_quick_classification_and_gradcam_is_enqueued_again_and_nothing_else(
    slide_with_cells, lab_staff, model_version, broker_client, queue
):
    # Not run on commit (the test's transaction never commits): nothing reaches the broker here.
    finished = services.slide_submit(actor=lab_staff, slide=slide_with_cells)
    services.inference_job_run(job_id=finished.pk)
    make_job = (slide_with_cells, model_version, lab_staff)
    queued = inference_job_make(*make_job)
    running = inference_job_make(*make_job, status=InferenceJobStatus.RUNNING)
    make_quick = {"model_version": model_version, "requested_by": lab_staff, "image": "quick-classify/x.png"}
    quick_queued = QuickClassification.objects.create(**make_quick)
    quick_running = QuickClassification.objects.create(**make_quick, status=QuickClassificationStatus.RUNNING)
    QuickClassification.objects.create(**make_quick, status=QuickClassificationStatus.FAILED)
    first, second = Prediction.objects.order_by("pk")[:2]
    gradcam = GradCam.objects.create(prediction=first)
    GradCam.objects.create(prediction=second, status=GradCamStatus.FAILED)

    counts = broker_recovery.unfinished_work_redispatch(app=celery_app, queue=queue)

    assert counts == {"inference jobs": 2, "quick classifications": 2, "Grad-CAMs": 1}
    assert _messages(broker_client, queue) == [
        ("classifier.inference_job_run", [queued.pk]),
        ("classifier.inference_job_run", [running.pk]),
        ("classifier.quick_classification_run", [quick_queued.pk]),
        ("classifier.quick_classification_run", [quick_running.pk]),
        ("classifier.gradcam_compute", [gradcam.pk]),
    ]


def test_the_sweep_sends_only_work_queued_too_long_or_silent_and_each_row_once_per_window(
    slide_with_cells, lab_staff, model_version, broker_client, queue
):
    make_job = (slide_with_cells, model_version, lab_staff)
    stale = inference_job_make(*make_job)
    fresh = inference_job_make(*make_job)
    silent = inference_job_make(*make_job, status=InferenceJobStatus.RUNNING)
    beating = inference_job_make(*make_job, status=InferenceJobStatus.RUNNING)
    InferenceJob.objects.filter(pk__in=[stale.pk, silent.pk, beating.pk]).update(
        created_at=timezone.now() - timedelta(minutes=10)
    )
    InferenceJob.objects.filter(pk=silent.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=6))
    InferenceJob.objects.filter(pk=beating.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=20))
    keys = [f"hematovision:redispatched:inference-jobs:{pk}" for pk in (stale.pk, fresh.pk)] + [
        f"hematovision:redispatched:silent-running-jobs:{pk}" for pk in (silent.pk, beating.pk)
    ]
    broker_client.delete(*keys)
    sweep = {
        "app": celery_app,
        "queue": queue,
        "client": broker_client,
        "queued_for": timedelta(minutes=2),
        "silent_for": timedelta(minutes=5),
        "resend_after": timedelta(minutes=30),
    }
    try:
        first = broker_recovery.overdue_work_redispatch(**sweep)
        second = broker_recovery.overdue_work_redispatch(**sweep)
    finally:
        broker_client.delete(*keys)

    assert first == {
        "inference jobs": 1,
        "silent running jobs": 1,
        "quick classifications": 0,
        "Grad-CAMs": 0,
    }
    assert set(second.values()) == {0}
    assert _messages(broker_client, queue) == [
        ("classifier.inference_job_run", [stale.pk]),
        ("classifier.inference_job_run", [silent.pk]),
    ]


def test_a_submit_the_broker_refuses_still_succeeds_and_leaves_the_job_queued(
    slide_with_cells, lab_staff, model_version, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    from classifier.tasks import inference_job_run_task

    def refuse(*args, **kwargs):
        raise KombuOperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(inference_job_run_task, "delay", refuse)
    with django_capture_on_commit_callbacks(execute=True):
        job = services.slide_submit(actor=lab_staff, slide=slide_with_cells)

    job.refresh_from_db()
    assert job.status == InferenceJobStatus.QUEUED
    assert "left for the sweep" in caplog.text


def test_a_killed_workers_job_resumes_within_a_minute_and_live_jobs_are_not_taken_over(settings):
    """Issue 11: HEMATOVISION_JOB_SILENT_SECONDS was 300 on its own: a killed worker's job waited
    up to 5 minutes. It is now three heartbeats, and the sweep runs often enough."""
    from django.conf import settings as configured

    heartbeat = configured.HEMATOVISION_JOB_HEARTBEAT_SECONDS
    silent = configured.HEMATOVISION_JOB_SILENT_SECONDS
    assert silent == 3 * heartbeat
    assert silent + configured.HEMATOVISION_DISPATCH_SWEEP_INTERVAL_SECONDS < 60


@pytest.mark.django_db(transaction=True)
def test_a_running_job_beats_on_its_own_while_its_worker_is_busy(
    slide_with_cells, lab_staff, model_version, settings
):
    """A live job beats even through a model load or batch slower than the silence threshold."""
    import time

    from classifier.services import job_heartbeat

    settings.HEMATOVISION_JOB_HEARTBEAT_SECONDS = 0.05
    long_ago = timezone.now() - timedelta(minutes=10)
    job = InferenceJob.objects.create(
        slide=slide_with_cells,
        model_version=model_version,
        requested_by=lab_staff,
        status=InferenceJobStatus.RUNNING,
        heartbeat_at=long_ago,
    )
    with job_heartbeat(job.pk):
        time.sleep(0.5)  # the worker is busy (loading a model, classifying a batch)
    job.refresh_from_db()
    assert job.heartbeat_at > timezone.now() - timedelta(seconds=1)


def test_queued_adaptation_runs_without_a_message_go_to_the_training_queue_once_per_window(
    model_version, broker_client, queue, settings
):
    from classifier.models import AdaptationRun

    settings.HEMATOVISION_TRAINING_QUEUE = queue
    stale = AdaptationRun.objects.create(base_model_version=model_version)
    AdaptationRun.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(minutes=10))
    key = f"hematovision:redispatched:adaptation-runs:{stale.pk}"
    broker_client.delete(key)
    try:
        sent = [
            broker_recovery.adaptation_runs_redispatch(
                app=celery_app, client=broker_client, created_before=timedelta(minutes=2)
            )
            for _ in range(2)
        ]
    finally:
        broker_client.delete(key)

    assert sent == [1, 0]
    assert _messages(broker_client, queue) == [("classifier.adaptation_run", [stale.pk])]


def test_a_training_worker_is_one_that_consumes_only_the_training_queue(settings):
    class Consumer:
        def __init__(self, queues: list[str]) -> None:
            self.app = type("App", (), {})()
            self.app.amqp = type("Amqp", (), {"queues": type("Queues", (), {"consume_from": queues})()})()
            self.app.conf = type("Conf", (), {"task_default_queue": "celery"})()

    settings.HEMATOVISION_TRAINING_QUEUE = "training"

    assert broker_recovery._is_training_worker(Consumer(["training"])) is True
    assert broker_recovery._is_training_worker(Consumer(["celery"])) is False
    assert broker_recovery._is_training_worker(Consumer(["celery", "training"])) is False

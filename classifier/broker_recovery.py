"""Enqueue unfinished work again when Redis restarted: the database, not the broker, knows what
is left to do.

A Redis restart loses every queued and unacknowledged message when it keeps nothing on disk, and
the last second or minutes of them with AOF or snapshots; the jobs stay *queued* or *running* in
the database with no message left to run them. So each worker, whenever it (re)connects to the
broker, compares the Redis server's ``run_id`` (new at every server start) with the one recorded
in the broker itself; the first worker to see a new one enqueues every unfinished inference job,
quick classification and Grad-CAM again. All three tasks are safe to run twice (claims by
conditional update, predictions unique per cell and model version), so a message that did survive
only costs a no-op delivery.

A request that commits while the broker is unreachable keeps its row *queued* with no message at
all (the web side logs it and answers normally). So every worker also sweeps, once a minute, for
work still queued some minutes after it was created and enqueues it again; a key per row in Redis
keeps a long backlog from being re-sent at every sweep. The same sweep re-sends a *running* job
whose worker wrote no heartbeat (after each batch of cells) for some minutes: its worker died,
and the broker would hand the message back only after its visibility timeout.

Adaptation runs (the ``training`` queue) are never resumed: a running one whose heartbeat stopped
is marked failed by the sweep of any worker (``classifier.adaptation``); a queued one without a
message is sent again to the training queue. A worker consuming only the training queue leaves
inference work to the inference workers, so it never takes their tasks onto its own queue.
"""

import logging
from datetime import timedelta
from typing import Any

import redis
from celery import bootsteps
from django.conf import settings
from django.db import close_old_connections, connections
from django.db.models import QuerySet
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from classifier.models import (
    GradCam,
    GradCamStatus,
    InferenceJob,
    InferenceJobStatus,
    QuickClassification,
    QuickClassificationStatus,
)

logger = logging.getLogger(__name__)

# Kept in the broker's database: the run_id of the Redis server the unfinished work was last
# enqueued on. Swapped atomically, so one worker per Redis start re-dispatches.
BROKER_RUN_KEY = "hematovision:broker-run-id"


def broker_restarted(client: Any) -> bool:
    """True, for exactly one caller, the first time a Redis server start is seen."""
    run_id = str(client.info("server").get("run_id", ""))
    previous = client.set(BROKER_RUN_KEY, run_id, get=True)
    return previous is None or previous.decode() != run_id


def _unfinished_work() -> dict[str, tuple[str, QuerySet]]:
    return {
        "inference jobs": (
            "classifier.inference_job_run",
            InferenceJob.objects.filter(status__in=[InferenceJobStatus.QUEUED, InferenceJobStatus.RUNNING]),
        ),
        "quick classifications": (
            "classifier.quick_classification_run",
            QuickClassification.objects.filter(
                status__in=[QuickClassificationStatus.QUEUED, QuickClassificationStatus.RUNNING]
            ),
        ),
        "Grad-CAMs": ("classifier.gradcam_compute", GradCam.objects.filter(status=GradCamStatus.QUEUED)),
    }


def task_send_or_defer(task: Any, pk: int) -> None:
    """Send ``task(pk)`` after the commit that made the row; when the broker cannot be reached the
    row stays queued and the workers' sweep sends it later, so the request still succeeds."""
    try:
        task.delay(pk)
    except (KombuOperationalError, redis.RedisError, OSError) as error:
        logger.warning("Broker unreachable, %s(%s) left for the sweep: %s", task.name, pk, error)


def _overdue_work(
    queued_for: timedelta, silent_for: timedelta, resend_after: timedelta
) -> dict[str, tuple[str, QuerySet, timedelta]]:
    """Per kind: (task, overdue rows, how long before the same row may be sent again)."""
    created_before = timezone.now() - queued_for
    return {
        "inference jobs": (
            "classifier.inference_job_run",
            InferenceJob.objects.filter(status=InferenceJobStatus.QUEUED, created_at__lt=created_before),
            resend_after,
        ),
        # Its worker died (SIGKILL, out of memory, machine lost): without this the message comes
        # back only after the broker's visibility timeout (an hour by default).
        "silent running jobs": (
            "classifier.inference_job_run",
            InferenceJob.objects.filter(
                status=InferenceJobStatus.RUNNING, heartbeat_at__lt=timezone.now() - silent_for
            ),
            silent_for,
        ),
        "quick classifications": (
            "classifier.quick_classification_run",
            QuickClassification.objects.filter(
                status=QuickClassificationStatus.QUEUED, created_at__lt=created_before
            ),
            resend_after,
        ),
        "Grad-CAMs": (
            "classifier.gradcam_compute",
            GradCam.objects.filter(status=GradCamStatus.QUEUED, requested_at__lt=created_before),
            resend_after,
        ),
    }


def overdue_work_redispatch(
    *,
    app: Any,
    queue: str,
    client: Any,
    queued_for: timedelta,
    silent_for: timedelta,
    resend_after: timedelta,
) -> dict[str, int]:
    """Enqueue again what is still queued ``queued_for`` after its creation (each row at most once
    per ``resend_after``) and running jobs whose worker wrote no heartbeat for ``silent_for`` (at
    most once per ``silent_for``); a Redis key per row keeps the count. Returns how many of each
    were sent."""
    counts = {}
    for name, (task_name, rows, window) in _overdue_work(queued_for, silent_for, resend_after).items():
        sent = 0
        for pk in rows.order_by("pk").values_list("pk", flat=True):
            key = f"hematovision:redispatched:{name.replace(' ', '-')}:{pk}"
            if client.set(key, "1", nx=True, ex=max(1, int(window.total_seconds()))):
                app.send_task(task_name, args=[pk], queue=queue)
                sent += 1
        counts[name] = sent
    return counts


def unfinished_work_redispatch(*, app: Any, queue: str) -> dict[str, int]:
    """Enqueue every unfinished piece of work once more, oldest first; returns how many of each."""
    counts = {}
    for name, (task_name, rows) in _unfinished_work().items():
        ids = list(rows.order_by("pk").values_list("pk", flat=True))
        for pk in ids:
            app.send_task(task_name, args=[pk], queue=queue)
        counts[name] = len(ids)
    return counts


def _queue_consumed(consumer: Any) -> str:
    """The default queue if this worker consumes it, else the first queue it consumes (``-Q``)."""
    queues = list(consumer.app.amqp.queues.consume_from)
    default = consumer.app.conf.task_default_queue
    return default if default in queues or not queues else queues[0]


def _broker_client(consumer: Any) -> redis.Redis:
    """A plain synchronous client: the channel's own client belongs to the worker's event loop
    (its commands may return None before the loop reads the reply)."""
    return redis.Redis.from_url(consumer.app.conf.broker_url, socket_timeout=10, socket_connect_timeout=10)


def _is_training_worker(consumer: Any) -> bool:
    return _queue_consumed(consumer) == settings.HEMATOVISION_TRAINING_QUEUE


def adaptation_runs_redispatch(*, app: Any, client: Any | None, created_before: timedelta) -> int:
    """Send queued adaptation runs older than ``created_before`` to the training queue again (each
    at most once per HEMATOVISION_DISPATCH_RESEND_SECONDS when ``client`` keeps the count)."""
    from classifier.adaptation import adaptation_runs_queued_before

    sent = 0
    for pk in adaptation_runs_queued_before(created_before=created_before):
        key = f"hematovision:redispatched:adaptation-runs:{pk}"
        if client is None or client.set(key, "1", nx=True, ex=settings.HEMATOVISION_DISPATCH_RESEND_SECONDS):
            app.send_task("classifier.adaptation_run", args=[pk], queue=settings.HEMATOVISION_TRAINING_QUEUE)
            sent += 1
    return sent


def adaptation_sweep(*, app: Any, client: Any) -> None:
    """Fail runs whose training worker died; resend queued runs whose message was lost."""
    from classifier.adaptation import adaptation_runs_fail_silent

    if not client.set("hematovision:adaptation-sweep-lock", "1", nx=True, ex=max(1, _sweep_interval() - 1)):
        return
    failed = adaptation_runs_fail_silent(
        silent_for=timedelta(seconds=settings.HEMATOVISION_ADAPTATION_SILENT_SECONDS)
    )
    sent = adaptation_runs_redispatch(
        app=app, client=client, created_before=timedelta(seconds=settings.HEMATOVISION_DISPATCH_STALE_SECONDS)
    )
    if failed or sent:
        logger.warning(
            "Adaptation runs whose worker was lost, failed: %s; queued ones sent again: %s", failed, sent
        )


def _sweep_interval() -> int:
    return settings.HEMATOVISION_DISPATCH_SWEEP_INTERVAL_SECONDS


class BrokerRecovery(bootsteps.StartStopStep):
    """Consumer step: runs at every broker (re)connection, once the task consumer is set up, and
    sweeps for stale queued work every ``HEMATOVISION_DISPATCH_SWEEP_INTERVAL_SECONDS``."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._sweep_timer = None

    def start(self, consumer: Any) -> None:
        if consumer.connection.transport.driver_type != "redis":
            return
        close_old_connections()
        client = _broker_client(consumer)
        try:
            if not _is_training_worker(consumer) and broker_restarted(client):
                try:
                    counts = unfinished_work_redispatch(app=consumer.app, queue=_queue_consumed(consumer))
                    counts["adaptation runs"] = adaptation_runs_redispatch(
                        app=consumer.app, client=None, created_before=timedelta(0)
                    )
                except Exception:
                    client.delete(BROKER_RUN_KEY)  # the next (re)connection tries again
                    raise
                level = logging.WARNING if any(counts.values()) else logging.INFO
                logger.log(level, "New Redis server run; unfinished work enqueued again: %s", counts)
        except Exception:
            logger.exception("Could not check the broker for lost messages")
        finally:
            client.close()
            # The pool's processes are forked from this one: they must not share its connection.
            connections.close_all()
        if self._sweep_timer is None and consumer.timer is not None:
            self._sweep_timer = consumer.timer.call_repeatedly(
                settings.HEMATOVISION_DISPATCH_SWEEP_INTERVAL_SECONDS, self._sweep, args=(consumer,)
            )

    def stop(self, consumer: Any) -> None:
        if self._sweep_timer is not None:
            self._sweep_timer.cancel()
            self._sweep_timer = None

    def shutdown(self, consumer: Any) -> None:
        self.stop(consumer)

    def _sweep(self, consumer: Any) -> None:
        interval = settings.HEMATOVISION_DISPATCH_SWEEP_INTERVAL_SECONDS
        client = _broker_client(consumer)
        try:
            adaptation_sweep(app=consumer.app, client=client)
        except Exception:
            logger.exception("Could not sweep adaptation runs")
        try:
            if _is_training_worker(consumer):
                return
            # One worker per interval does the sweep.
            if not client.set("hematovision:dispatch-sweep-lock", "1", nx=True, ex=max(1, interval - 1)):
                return
            counts = overdue_work_redispatch(
                app=consumer.app,
                queue=_queue_consumed(consumer),
                client=client,
                queued_for=timedelta(seconds=settings.HEMATOVISION_DISPATCH_STALE_SECONDS),
                silent_for=timedelta(seconds=settings.HEMATOVISION_JOB_SILENT_SECONDS),
                resend_after=timedelta(seconds=settings.HEMATOVISION_DISPATCH_RESEND_SECONDS),
            )
            if any(counts.values()):
                logger.warning("Work still queued long after it was created, enqueued again: %s", counts)
        except Exception:
            logger.exception("Could not sweep for queued work without a message")
        finally:
            client.close()
            close_old_connections()

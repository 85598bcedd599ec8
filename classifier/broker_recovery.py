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
"""

import logging
from typing import Any

from celery import bootsteps
from django.db import close_old_connections, connections
from django.db.models import QuerySet

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


class BrokerRecovery(bootsteps.StartStopStep):
    """Consumer step: runs at every broker (re)connection, once the task consumer is set up."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def start(self, consumer: Any) -> None:
        if consumer.connection.transport.driver_type != "redis":
            return
        client = consumer.connection.default_channel.client
        close_old_connections()
        try:
            if not broker_restarted(client):
                return
            try:
                counts = unfinished_work_redispatch(app=consumer.app, queue=_queue_consumed(consumer))
            except Exception:
                client.delete(BROKER_RUN_KEY)  # the next (re)connection tries again
                raise
            level = logging.WARNING if any(counts.values()) else logging.INFO
            logger.log(level, "New Redis server run; unfinished work enqueued again: %s", counts)
        except Exception:
            logger.exception("Could not check the broker for lost messages")
        finally:
            # The pool's processes are forked from this one: they must not share its connection.
            connections.close_all()

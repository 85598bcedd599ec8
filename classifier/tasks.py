"""Celery tasks: receive ids, call a service. Workers load the active model once per process."""

import logging

from celery import Task, shared_task
from celery import current_app as celery_app
from celery.signals import worker_init, worker_process_init
from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError, close_old_connections, connections

from classifier import adaptation, gradcam, services
from classifier.adapter import ModelLoadError, predictor_for
from classifier.broker_recovery import BrokerRecovery

logger = logging.getLogger(__name__)

# Work whose messages a Redis restart lost is enqueued again when workers reconnect.
celery_app.steps["consumer"].add(BrokerRecovery)


class _ClinicalTask(Task):
    """Retries database hiccups with backoff, a bounded number of times; late acks and requeue on
    worker loss come from the CELERY_* settings."""

    autoretry_for = (OperationalError, InterfaceError)
    max_retries = 3
    retry_backoff = 2
    retry_backoff_max = 60
    retry_jitter = True


class _InferenceJobTask(_ClinicalTask):
    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:  # noqa: ANN001
        # Retries exhausted or an unexpected error: the job must end visibly failed, not hang.
        services.inference_job_abandon(job_id=args[0], error=f"{type(exc).__name__}: {exc}")


@shared_task(base=_InferenceJobTask, name="classifier.inference_job_run")
def inference_job_run_task(job_id: int) -> None:
    services.inference_job_run(job_id=job_id)


@shared_task(base=_ClinicalTask, name="classifier.quick_classification_run")
def quick_classification_run_task(quick_classification_id: int) -> None:
    services.quick_classification_run(quick_classification_id=quick_classification_id)
    # Housekeeping here rather than in a scheduler: quick-classify images are not records to keep.
    services.quick_classifications_purge(older_than_seconds=services.QUICK_CLASSIFICATION_RETENTION_SECONDS)


@worker_init.connect
def _default_model_register(**kwargs) -> None:  # noqa: ANN003
    """A fresh deployment serves the default model without a manual step."""
    try:
        services.model_version_register_default()
    except Exception:
        logger.exception("Could not register the default model")
    finally:
        # Pool processes are forked from here: they must not share this connection.
        connections.close_all()


@worker_process_init.connect
def _active_model_warm(**kwargs) -> None:  # noqa: ANN003
    """Load the active model when a pool process starts, so the first job does not wait for it."""
    close_old_connections()
    try:
        model_version = services.model_version_active()
        predictor_for(model_version)
    except (ModelLoadError, ValidationError) as error:
        logger.warning("No model warmed at worker start: %s", error)
    finally:
        connections.close_all()


@shared_task(base=_ClinicalTask, name="classifier.gradcam_compute")
def gradcam_compute_task(gradcam_id: int) -> None:
    gradcam.gradcam_compute(gradcam_id=gradcam_id)


@shared_task(base=_ClinicalTask, name="classifier.adaptation_run")
def adaptation_run_task(run_id: int) -> None:
    """On the training queue only (settings.CELERY_TASK_ROUTES), consumed with concurrency 1."""
    adaptation.adaptation_run_execute(run_id=run_id)

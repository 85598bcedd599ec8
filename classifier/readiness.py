"""The classifier's readiness checks (``core.readiness``): the broker answers, a worker answers a
ping through it, and the active model's files match the checksums recorded at registration."""

from celery import current_app
from django.conf import settings

from classifier.adapter import ModelLoadError, model_directory_verify
from classifier.models import ModelVersion


def broker_check() -> str:
    try:
        with current_app.connection_for_write() as connection:
            connection.ensure_connection(
                max_retries=1, timeout=settings.HEMATOVISION_READINESS_TIMEOUT_SECONDS
            )
    except Exception as error:  # noqa: BLE001
        return f"unreachable ({type(error).__name__})"
    return ""


def worker_check() -> str:
    try:
        replies = current_app.control.ping(timeout=settings.HEMATOVISION_READINESS_TIMEOUT_SECONDS)
    except Exception as error:  # noqa: BLE001
        return f"no answer ({type(error).__name__})"
    return "" if replies else "no worker answered a ping"


def model_check() -> str:
    model_version = ModelVersion.objects.filter(is_active=True).first()
    if model_version is None:
        return "no model version is active"
    try:
        model_directory_verify(
            name=model_version.name,
            directory=model_version.directory,
            expected_hashes=model_version.file_hashes,
        )
    except ModelLoadError:
        return f"{model_version.name}: files missing or changed since registration (sha256 mismatch)"
    except OSError as error:
        return f"{model_version.name}: its files cannot be read ({type(error).__name__})"
    return ""


CHECKS = {"broker": broker_check, "worker": worker_check, "model": model_check}

"""Readiness: whether this instance can do its work now, as opposed to liveness (``/health/``:
the process answers). Apps register their checks (``AppConfig.ready()``); ``/ready/`` runs them
all and answers 503 naming each one that failed. For orchestrators (a Kubernetes
``readinessProbe``, a load balancer's health check before sending traffic) and ``make run``.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection

# A check returns "" when ready, else what is wrong (short, no secrets: /ready/ is public).
ReadinessCheck = Callable[[], str]

_checks: dict[str, ReadinessCheck] = {}


def readiness_check_register(name: str, check: ReadinessCheck) -> None:
    """Idempotent by name, so a second ``ready()`` does not double it."""
    _checks[name] = check


def database_check() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:  # noqa: BLE001  (any failure means not ready)
        return f"unreachable ({type(error).__name__})"
    return ""


@dataclass(frozen=True)
class Readiness:
    problems: dict[str, str]
    checked: tuple[str, ...]

    @property
    def ready(self) -> bool:
        return not self.problems


def readiness_check() -> Readiness:
    checks = {"database": database_check, **_checks}
    problems = {}
    for name, check in checks.items():
        try:
            problem = check()
        except Exception as error:  # noqa: BLE001  (a crashing check is a failed one)
            problem = f"check failed ({type(error).__name__})"
        if problem:
            problems[name] = problem
    return Readiness(problems=problems, checked=tuple(checks))

"""schemathesis against the served /api/schema/, as every role: no server error, and every
response conforms to the schema (status code documented, content type, body, headers).

CI draws ``HEMATOVISION_SCHEMATHESIS_EXAMPLES`` (default 3) positive and as many negative
examples per operation, role and id source; the full run sets it higher (see README, Security).
Generation is derandomised, so a CI failure replays identically.
"""

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import User
from accounts.services import api_token_issue

EXAMPLES = int(os.environ.get("HEMATOVISION_SCHEMATHESIS_EXAMPLES", "3"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
# How each role authenticates: both of the API's schemes are exercised.
# Which object a path's {id} names, so examples also reach existing rows (not only 404s).
ID_SOURCES = {
    "/api/audit-events/": "event",
    "/api/cell-images/": "cell_image",
    "/api/consults/": "consult",
    "/api/exports/patients/": "patient",
    "/api/exports/slides/": "slide",
    "/api/inference-jobs/": "job",
    "/api/model-versions/": "model_version",
    "/api/my-proficiency-sets/": "proficiency_set",
    "/api/patients/": "patient",
    "/api/predictions/": "prediction",
    "/api/proficiency-attempts/": "attempt",
    "/api/proficiency-sets/": "proficiency_set",
    "/api/quick-classifications/": "quick",
    "/api/slides/": "slide",
    "/api/users/": "member",
}
ROLES = {
    "lab_staff": "token",
    "pathologist": "session",
    "administrator": "token",
    "outsider": "session",
    "trainee": "token",
    "consultant": "token",
    "anonymous": None,
}


@contextmanager
def connection_kept_open() -> Iterator[None]:
    """Keep the test's transaction across requests through the real WSGI handler (Django's own
    test client does the same); Django's test client re-connects the handlers when it is used."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def served_schema(user: User) -> schemathesis.schemas.BaseSchema:
    client = Client()
    client.force_login(user)
    response = client.get(reverse("api:schema"), {"format": "json"})
    assert response.status_code == 200
    return schemathesis.openapi.from_dict(response.json())


def credentials(user: User | None, scheme: str | None) -> dict:
    """Headers and cookies of one role's requests."""
    if scheme == "token":
        return {"headers": {"Authorization": f"Token {api_token_issue(user=user).key}"}}
    if scheme == "session":
        client = Client()
        client.force_login(user)
        csrf_secret = secrets.token_hex(16)  # Django accepts an unmasked 32-character secret
        return {
            "headers": {"X-CSRFToken": csrf_secret},
            "cookies": {"sessionid": client.cookies["sessionid"].value, "csrftoken": csrf_secret},
        }
    return {}


def fuzz_operation(
    operation: schemathesis.APIOperation, send: Callable, path_parameters: dict | None
) -> dict[str, str]:
    """Run the examples of one operation; return each distinct failure with its first example."""
    failures: dict[str, str] = {}
    strategy = operation.as_strategy(
        generation_mode=GenerationMode.POSITIVE, path_parameters=path_parameters
    ) | operation.as_strategy(generation_mode=GenerationMode.NEGATIVE, path_parameters=path_parameters)

    @given(case=strategy)
    @settings(
        max_examples=2 * EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def example(case: schemathesis.Case) -> None:
        response = send(case)
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:
            for failure in group.exceptions:
                sent = f"{case.method} {case.formatted_path} ({case.media_type or 'no body'})"
                seen = f"{sent} -> {response.status_code}: {failure.message}"
                failures.setdefault(f"{operation.label}: {failure.title}", seen[:500])

    example()
    return failures


@pytest.mark.django_db
@pytest.mark.parametrize("role", sorted(ROLES))
def test_every_operation_conforms_to_the_schema(request, record_property, role, objects, administrator):
    schema = served_schema(administrator)
    user = None if role == "anonymous" else request.getfixturevalue(role)
    auth = credentials(user, ROLES[role])
    application = WSGIHandler()

    def send(case: schemathesis.Case) -> schemathesis.Response:
        nonlocal requests
        requests += 1
        return case.call(app=application, **auth)

    failures, operations, requests = {}, 0, 0
    with connection_kept_open():
        for result in schema.get_all_operations():
            operation = result.ok()
            operations += 1
            failures |= fuzz_operation(operation, send, None)
            path = operation.path
            source = next((name for prefix, name in ID_SOURCES.items() if path.startswith(prefix)), None)
            if "{id}" in path and source:
                failures |= fuzz_operation(operation, send, {"id": objects[source].pk})
    record_property("operations", operations)
    record_property("requests", requests)
    assert operations >= 30
    assert not failures, "\n".join(f"{name}\n    {example}" for name, example in sorted(failures.items()))

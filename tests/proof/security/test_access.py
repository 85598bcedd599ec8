"""Access under real conditions: the API token endpoint shares the login lockout, every API URL
answers a token the way the permission matrix says it answers a session, and production
settings pass ``check --deploy`` in a full deployment environment (object storage, proxy)."""

import datetime

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.services import api_token_issue
from tests.conftest import PASSWORD
from tests.hematovision_site.test_permission_matrix import MATRIX, WRITES, _ask, _check
from tests.hematovision_site.test_settings import PRODUCTION_ENVIRONMENT, manage

# api:token is left out: it authenticates nobody, and issuing a token revokes the one in use.
API_ROWS = [(name, cell.method, cell) for name, cell in MATRIX.items() if name.startswith("api:")] + [
    (name, method, cell) for (name, method), cell in WRITES.items() if name.startswith("api:")
]
API_ROWS = [row for row in API_ROWS if row[0] != "api:token"]


def ask_token(address: str, password: str = PASSWORD) -> int:
    client = Client(REMOTE_ADDR=address)
    return client.post(reverse("api:token"), {"username": "lab", "password": password}).status_code


@pytest.mark.django_db
def test_token_requests_lock_after_the_failure_limit_and_share_the_login_form_lockout(lab_staff, settings):
    answers = [ask_token("203.0.113.7", "wrong-password") for _ in range(settings.AXES_FAILURE_LIMIT)]
    assert answers == [403] * (settings.AXES_FAILURE_LIMIT - 1) + [429]
    assert ask_token("203.0.113.7") == 429  # the right password, locked out
    credentials = {"username": "lab", "password": PASSWORD}
    locked = Client(REMOTE_ADDR="203.0.113.7").post(reverse("api:token"), credentials)
    assert locked["Content-Type"] == "application/json"  # issue 11: the API's lockout answers JSON
    assert "locked out" in locked.json()["detail"] and int(locked["Retry-After"]) > 0
    form = Client(REMOTE_ADDR="203.0.113.7").post(
        reverse("accounts:login"), {"username": "lab", "password": PASSWORD}
    )
    assert form.status_code == 429
    assert ask_token("198.51.100.20") == 200  # another address is not locked out


@pytest.mark.django_db
def test_the_lockout_ends_after_the_cool_off(lab_staff, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        ask_token("203.0.113.8", "wrong-password")
    assert ask_token("203.0.113.8") == 429
    earlier = timezone.now() - settings.AXES_COOLOFF_TIME - datetime.timedelta(seconds=1)
    AccessAttempt.objects.update(attempt_time=earlier)
    assert ask_token("203.0.113.8") == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    "role", ["lab_staff", "pathologist", "administrator", "outsider", "trainee", "consultant"]
)
def test_every_api_url_answers_a_token_as_the_matrix_says(request, objects, role):
    user = request.getfixturevalue(role)
    client = Client(HTTP_AUTHORIZATION=f"Token {api_token_issue(user=user).key}")
    wrong = []
    for name, method, cell in API_ROWS:
        response = _ask(client, user, name, method, cell, objects)
        try:
            _check(response, cell.answer(role))
        except AssertionError:
            wrong.append(f"{method.upper()} {name}: {response.status_code}, expected {cell.answer(role)}")
    assert len(API_ROWS) >= 40
    assert wrong == []


def test_check_deploy_is_clean_in_a_full_production_environment():
    environment = {
        **PRODUCTION_ENVIRONMENT,
        "ALLOWED_HOSTS": "hematovision.example.org,hematovision-internal.example.org",
        "CSRF_TRUSTED_ORIGINS": "https://hematovision.example.org",
        "HEMATOVISION_FILE_STORAGE": "s3",
        "AWS_STORAGE_BUCKET_NAME": "hematovision-cells",
        "AWS_S3_ENDPOINT_URL": "https://objects.example.org",
        "AWS_S3_REGION_NAME": "eu-central-1",
        "AWS_ACCESS_KEY_ID": "hematovision-app",
        "AWS_SECRET_ACCESS_KEY": "an-object-storage-secret-of-realistic-length-4242",
        "MEDIA_ROOT": "/srv/hematovision/media",
        "STATIC_ROOT": "/srv/hematovision/static",
        "LOG_LEVEL": "WARNING",
        "TIME_ZONE": "Europe/Berlin",
    }
    result = manage("check", "--deploy", "--fail-level", "DEBUG", environment=environment)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


@pytest.mark.django_db
@pytest.mark.parametrize("body", ["3.5", "[]", '"lab"', "null"])
def test_a_token_request_that_is_not_an_object_is_a_400_not_a_server_error(body):
    """Found by the full schemathesis run: a JSON number as the body was a 500."""
    response = Client().post(reverse("api:token"), body, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"detail": "Send a username and a password."}


@pytest.mark.django_db
def test_a_slide_created_through_the_api_without_a_stain_gets_the_default(lab_client, objects):
    """Found by the full schemathesis run: leaving out the optional stain was a 500."""
    response = lab_client.post(
        reverse("api:slide-list"),
        {
            "patient": objects["patient"].pk,
            "accession_number": "S-NO-STAIN",
            "collected_at": "2026-11-26T08:00Z",
        },
    )
    assert response.status_code == 201
    assert response.json()["stain"] == "wright_giemsa"

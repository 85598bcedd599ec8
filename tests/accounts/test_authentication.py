"""API tokens expire: a token older than HEMATOVISION_API_TOKEN_HOURS is refused and deleted."""

import datetime

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token

from accounts.services import api_token_issue
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def _patients(key: str):
    return Client().get(reverse("api:patient-list"), HTTP_AUTHORIZATION=f"Token {key}")


def test_a_token_works_until_its_lifetime_ends_then_is_refused_and_deleted(lab_staff, settings):
    settings.HEMATOVISION_API_TOKEN_HOURS = 12
    token = api_token_issue(user=lab_staff)
    assert _patients(token.key).status_code == 200

    Token.objects.filter(pk=token.pk).update(created=timezone.now() - datetime.timedelta(hours=12, minutes=1))
    expired = _patients(token.key)

    assert expired.status_code == 401
    assert "Token expired" in expired.json()["detail"]
    assert not Token.objects.filter(pk=token.pk).exists()


def test_a_new_token_after_expiry_works(lab_staff, settings):
    settings.HEMATOVISION_API_TOKEN_HOURS = 1
    old = api_token_issue(user=lab_staff)
    Token.objects.filter(pk=old.pk).update(created=timezone.now() - datetime.timedelta(hours=2))

    issued = Client().post(reverse("api:token"), {"username": lab_staff.username, "password": PASSWORD})

    assert issued.status_code == 200
    assert _patients(issued.json()["token"]).status_code == 200
    assert _patients(old.key).status_code == 401


# --- Demo accounts outside the quick start (issue 11) ------------------------------------------------


@pytest.fixture
def demo_pathologist(make_user):
    from accounts.roles import Role

    return make_user("pathologist", Role.PATHOLOGIST)


def test_demo_usernames_are_refused_at_login_and_token_outside_the_quick_start(demo_pathologist, settings):
    settings.HEMATOVISION_DEMO_USERS_ALLOWED = False
    credentials = {"username": "pathologist", "password": PASSWORD}
    form = Client().post(reverse("accounts:login"), credentials)
    token = Client().post(reverse("api:token"), credentials)
    existing = api_token_issue(user=demo_pathologist)

    assert form.status_code == 200 and "_auth_user_id" not in form.client.session
    assert token.status_code == 403
    assert _patients(existing.key).status_code == 401
    from audit.models import AuditAction, AuditEvent

    assert (
        AuditEvent.objects.filter(action=AuditAction.LOGIN_FAILED, actor_username="pathologist").count() == 2
    )


def test_demo_usernames_work_in_the_quick_start(demo_pathologist, settings):
    settings.HEMATOVISION_DEMO_USERS_ALLOWED = True
    response = Client().post(reverse("accounts:login"), {"username": "pathologist", "password": PASSWORD})
    assert response.status_code == 302


def test_check_deploy_fails_while_a_demo_account_exists_outside_the_quick_start(make_user, settings):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    settings.HEMATOVISION_DEMO_USERS_ALLOWED = False
    call_command("check", "--deploy", "--tag", "security")
    make_user("Admin", None)
    with pytest.raises(
        SystemCheckError, match=r"hematovision.E001.*Demo accounts exist in this database: Admin"
    ):
        call_command("check", "--deploy", "--tag", "security")


# --- Per-address lockout across usernames (issue 11) --------------------------------------------------


def test_a_password_spray_over_many_usernames_from_one_address_is_locked(make_user, settings):
    settings.HEMATOVISION_LOGIN_ADDRESS_FAILURE_LIMIT = 6
    for index in range(8):
        make_user(f"user{index}", None)
    spray = Client(REMOTE_ADDR="203.0.113.50")
    answers = [
        spray.post(reverse("api:token"), {"username": f"user{index}", "password": "Winter2024!"}).status_code
        for index in range(8)
    ]
    assert answers == [403] * 5 + [429] * 3
    assert spray.post(reverse("api:token"), {"username": "user7", "password": PASSWORD}).status_code == 429
    other = Client(REMOTE_ADDR="198.51.100.9")
    assert other.post(reverse("api:token"), {"username": "user7", "password": PASSWORD}).status_code == 200

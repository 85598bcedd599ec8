import time

import pytest
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse

from accounts.models import User
from accounts.roles import Role
from accounts.session import LAST_ACTIVITY_KEY
from audit.models import AuditAction, AuditEvent
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db
NEW_PASSWORD = "amber-lantern-meadow-93"


def log_in(client: Client, username: str, password: str = PASSWORD, **extra: str) -> HttpResponse:
    return client.post(reverse("accounts:login"), {"username": username, "password": password}, **extra)


def test_login_rotates_the_session_key_and_is_audited(lab_staff):
    client = Client()
    client.get(reverse("accounts:login"))
    client.session.save()
    anonymous_key = client.session.session_key
    response = log_in(client, "lab", REMOTE_ADDR="198.51.100.4")
    assert response.status_code == 302
    assert client.session.session_key != anonymous_key
    event = AuditEvent.objects.get(action=AuditAction.LOGIN)
    assert (event.actor, event.client_address) == (lab_staff, "198.51.100.4")


def test_a_failed_login_is_audited_with_the_attempted_username(lab_staff):
    log_in(Client(), "lab", "wrong-password")
    event = AuditEvent.objects.get(action=AuditAction.LOGIN_FAILED)
    assert (event.actor, event.actor_username) == (None, "lab")


def test_repeated_failures_lock_the_account_even_with_the_right_password(lab_staff, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, "lab", "wrong-password")
    response = log_in(client, "lab")
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    assert (
        AuditEvent.objects.filter(action=AuditAction.LOGIN_FAILED).count() == settings.AXES_FAILURE_LIMIT + 1
    )


def test_logout_is_post_only_and_audited(lab_client, lab_staff):
    assert lab_client.get(reverse("accounts:logout")).status_code == 405
    lab_client.post(reverse("accounts:logout"))
    assert "_auth_user_id" not in lab_client.session
    assert AuditEvent.objects.filter(action=AuditAction.LOGOUT, actor=lab_staff).count() == 1


def test_an_idle_session_is_logged_off_and_audited(lab_client, lab_staff, settings):
    lab_client.get(reverse("home"))
    session = lab_client.session
    session[LAST_ACTIVITY_KEY] = int(time.time()) - settings.HEMATOVISION_SESSION_IDLE_SECONDS - 1
    session.save()
    response = lab_client.get(reverse("cases:patient_list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))
    assert AuditEvent.objects.filter(action=AuditAction.SESSION_EXPIRED, actor=lab_staff).count() == 1


def test_background_polling_does_not_keep_a_session_alive(lab_client, settings):
    lab_client.get(reverse("home"))
    session = lab_client.session
    stale = int(time.time()) - settings.HEMATOVISION_SESSION_IDLE_SECONDS + 60
    session[LAST_ACTIVITY_KEY] = stale
    session.save()
    lab_client.get(reverse("home"), HTTP_X_HEMATOVISION_BACKGROUND="1")
    assert lab_client.session[LAST_ACTIVITY_KEY] == stale
    lab_client.get(reverse("home"))
    assert lab_client.session[LAST_ACTIVITY_KEY] > stale


def test_forms_refuse_a_post_without_the_csrf_token(lab_staff):
    client = Client(enforce_csrf_checks=True)
    client.force_login(lab_staff)
    response = client.post(
        reverse("cases:patient_create"),
        {"mrn": "C-1", "family_name": "A", "given_name": "B", "date_of_birth": "2000-01-01", "sex": "male"},
    )
    assert response.status_code == 403


def test_the_api_refuses_a_session_post_without_the_csrf_token(lab_staff):
    client = Client(enforce_csrf_checks=True)
    client.force_login(lab_staff)
    response = client.post(reverse("api:patient-list"), {}, content_type="application/json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_login_page_itself_needs_the_csrf_token(lab_staff):
    client = Client(enforce_csrf_checks=True)
    assert log_in(client, "lab").status_code == 403


def test_admin_creates_a_user_with_a_role(administrator_client, administrator):
    response = administrator_client.post(
        reverse("accounts:user_create"),
        {
            "username": "nina",
            "first_name": "Nina",
            "last_name": "New",
            "email": "",
            "role": "LAB_STAFF",
            "new_password": NEW_PASSWORD,
            "new_password_again": NEW_PASSWORD,
        },
    )
    user = User.objects.get(username="nina")
    assert response["Location"] == reverse("accounts:user_detail", args=[user.pk])
    assert user.role == Role.LAB_STAFF
    assert AuditEvent.objects.filter(action=AuditAction.USER_CREATED, actor=administrator).count() == 1


def test_mismatched_passwords_create_nobody(administrator_client):
    administrator_client.post(
        reverse("accounts:user_create"),
        {
            "username": "x",
            "role": "ADMIN",
            "new_password": NEW_PASSWORD,
            "new_password_again": NEW_PASSWORD + "!",
        },
    )
    assert not User.objects.filter(username="x").exists()


def test_admin_changes_a_role_with_a_reason(administrator_client, lab_staff):
    administrator_client.post(
        reverse("accounts:user_role_change", args=[lab_staff.pk]),
        {"role": "PATHOLOGIST", "reason": "qualified"},
    )
    assert User.objects.get(pk=lab_staff.pk).role == Role.PATHOLOGIST
    assert AuditEvent.objects.get(action=AuditAction.USER_ROLE_CHANGED).reason == "qualified"


def test_deactivation_ends_the_users_access_at_once(administrator_client, lab_client, lab_staff):
    assert lab_client.get(reverse("cases:patient_list")).status_code == 200
    administrator_client.post(
        reverse("accounts:user_deactivate", args=[lab_staff.pk]), {"reason": "left", "confirm": "on"}
    )
    assert lab_client.get(reverse("cases:patient_list")).status_code == 302
    administrator_client.post(reverse("accounts:user_reactivate", args=[lab_staff.pk]), {"reason": "back"})
    assert User.objects.get(pk=lab_staff.pk).is_active
    actions = list(AuditEvent.objects.filter(object_id=str(lab_staff.pk)).values_list("action", flat=True))
    assert AuditAction.USER_DEACTIVATED in actions and AuditAction.USER_REACTIVATED in actions


def test_an_admin_cannot_deactivate_themselves_through_the_page(administrator_client, administrator):
    response = administrator_client.post(
        reverse("accounts:user_deactivate", args=[administrator.pk]),
        {"reason": "testing", "confirm": "on"},
        follow=True,
    )
    assert "cannot deactivate your own account" in response.content.decode()
    assert User.objects.get(pk=administrator.pk).is_active


def test_password_reset_ends_the_users_sessions(administrator_client, lab_client, lab_staff):
    response = administrator_client.post(
        reverse("accounts:user_password_reset", args=[lab_staff.pk]),
        {"new_password": NEW_PASSWORD, "new_password_again": NEW_PASSWORD, "reason": "forgotten"},
    )
    assert response.status_code == 302
    assert lab_client.get(reverse("cases:patient_list")).status_code == 302
    assert User.objects.get(pk=lab_staff.pk).check_password(NEW_PASSWORD)


def test_a_weak_reset_password_is_refused(administrator_client, lab_staff):
    response = administrator_client.post(
        reverse("accounts:user_password_reset", args=[lab_staff.pk]),
        {"new_password": "12345678", "new_password_again": "12345678"},
    )
    assert response.status_code == 200
    assert response.context["form"].errors["new_password"]
    assert not AuditEvent.objects.filter(action=AuditAction.USER_PASSWORD_RESET).exists()


@pytest.mark.parametrize(
    "url_name", ["accounts:user_detail", "accounts:user_password_reset", "accounts:user_role_change"]
)
def test_absent_users_are_404(administrator_client, url_name):
    method = administrator_client.post if url_name.endswith("role_change") else administrator_client.get
    assert method(reverse(url_name, args=[999999])).status_code == 404

"""The admin's side of a lockout and of a deactivation (issue 12): the user page shows the lock
and lifts it with an audited Unlock; Deactivate asks for a confirmation and a reason, audited
with it; anonymous visitors of the API docs are sent to the login page."""

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.urls import reverse

from accounts.models import User
from accounts.selectors import user_login_lock
from accounts.services import user_deactivate
from audit.models import AuditAction, AuditEvent
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db
ADDRESS = "203.0.113.9"


def _fail_logins(settings, times: int | None = None) -> Client:
    client = Client(REMOTE_ADDR=ADDRESS)
    for _ in range(settings.AXES_FAILURE_LIMIT if times is None else times):
        client.post(reverse("accounts:login"), {"username": "lab", "password": "wrong-password"})
    return client


def _logs_in(client: Client) -> bool:
    response = client.post(reverse("accounts:login"), {"username": "lab", "password": PASSWORD})
    return response.status_code == 302


def test_the_user_page_shows_the_lock_and_unlock_lifts_it_audited(administrator_client, lab_staff, settings):
    locked_out = _fail_logins(settings)
    assert not _logs_in(locked_out)
    page = administrator_client.get(reverse("accounts:user_detail", args=[lab_staff.pk])).content.decode()
    assert "Locked out" in page and ADDRESS in page and ">Unlock</button>" in page

    response = administrator_client.post(
        reverse("accounts:user_unlock", args=[lab_staff.pk]), {"reason": "identity checked by phone"}
    )

    assert response.status_code == 302
    assert not AccessAttempt.objects.filter(username="lab").exists()
    assert not user_login_lock(user=lab_staff).locked
    event = AuditEvent.objects.get(action=AuditAction.USER_UNLOCKED)
    assert (event.actor_username, event.object_id, event.reason) == (
        "admin",
        str(lab_staff.pk),
        "identity checked by phone",
    )
    # The refused login with the right password, while locked, counted as one more failure.
    failures = settings.AXES_FAILURE_LIMIT + 1
    assert event.before == {"locked": True, "failures": failures, "addresses": [ADDRESS]}
    assert event.after == {"locked": False}
    assert _logs_in(Client(REMOTE_ADDR=ADDRESS))
    page = administrator_client.get(reverse("accounts:user_detail", args=[lab_staff.pk])).content.decode()
    assert "not locked, no recent failed logins" in page


def test_failures_below_the_limit_are_shown_but_do_not_lock(administrator_client, lab_staff, settings):
    _fail_logins(settings, times=2)

    lock = user_login_lock(user=lab_staff)

    assert not lock.locked and [attempt.failures for attempt in lock.attempts] == [2]
    page = administrator_client.get(reverse("accounts:user_detail", args=[lab_staff.pk])).content.decode()
    assert "Not locked; recent failed logins" in page and "Clear failed logins" in page


def test_unlocking_a_user_without_failed_logins_is_refused_and_not_audited(administrator_client, lab_staff):
    response = administrator_client.post(reverse("accounts:user_unlock", args=[lab_staff.pk]), follow=True)

    assert "the account is not locked" in response.content.decode()
    assert not AuditEvent.objects.filter(action=AuditAction.USER_UNLOCKED).exists()


def test_lab_staff_cannot_unlock_anyone(lab_client, pathologist, settings):
    response = lab_client.post(reverse("accounts:user_unlock", args=[pathologist.pk]))
    assert response.status_code == 403


def test_deactivate_asks_for_confirmation_and_a_reason_first(administrator_client, lab_staff):
    url = reverse("accounts:user_deactivate", args=[lab_staff.pk])
    page = administrator_client.get(url)
    detail = administrator_client.get(reverse("accounts:user_detail", args=[lab_staff.pk])).content.decode()

    unconfirmed = administrator_client.post(url, {"reason": "left the lab"})
    no_reason = administrator_client.post(url, {"confirm": "on", "reason": " "})

    assert page.status_code == 200 and "Deactivate Lena Lab?" in page.content.decode()
    assert f'href="{url}"' in detail  # the user page links to the confirmation, it does not act
    assert unconfirmed.status_code == 400 and no_reason.status_code == 400
    assert User.objects.get(pk=lab_staff.pk).is_active
    assert not AuditEvent.objects.filter(action=AuditAction.USER_DEACTIVATED).exists()

    done = administrator_client.post(url, {"confirm": "on", "reason": "left the lab"})

    assert done.status_code == 302 and not User.objects.get(pk=lab_staff.pk).is_active
    assert AuditEvent.objects.get(action=AuditAction.USER_DEACTIVATED).reason == "left the lab"


def test_the_service_and_the_api_refuse_a_deactivation_without_reason(administrator, lab_staff):
    from rest_framework.test import APIClient

    with pytest.raises(Exception, match="a reason is required"):
        user_deactivate(actor=administrator, user=lab_staff, reason="  ")
    api = APIClient()
    api.force_authenticate(administrator)
    url = reverse("api:user-deactivate", args=[lab_staff.pk])

    assert api.post(url, {}, format="json").status_code == 400
    assert api.post(url, {"reason": "left"}, format="json").status_code == 200
    assert AuditEvent.objects.get(action=AuditAction.USER_DEACTIVATED).reason == "left"


def test_anonymous_api_docs_go_to_the_login_page_and_come_back(client):
    response = client.get(reverse("api:docs"))

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('accounts:login')}?next={reverse('api:docs')}"

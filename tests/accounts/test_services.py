import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from rest_framework.authtoken.models import Token

from accounts.models import User
from accounts.roles import Role
from accounts.services import (
    api_token_issue,
    user_create,
    user_deactivate,
    user_password_reset,
    user_reactivate,
    user_role_change,
)
from audit.models import AuditAction, AuditEvent

pytestmark = pytest.mark.django_db
STRONG_PASSWORD = "violet-granite-harbour-42"


def only_event() -> AuditEvent:
    events = list(AuditEvent.objects.all())
    assert len(events) == 1, [event.action for event in events]
    return events[0]


def test_user_create_gives_exactly_one_role_and_audits_without_the_password(administrator):
    user = user_create(
        actor=administrator,
        username="newbie",
        password=STRONG_PASSWORD,
        role=Role.PATHOLOGIST,
        last_name="New",
    )
    user.refresh_from_db()
    assert user.role == Role.PATHOLOGIST
    assert list(user.groups.values_list("name", flat=True)) == ["PATHOLOGIST"]
    assert user.check_password(STRONG_PASSWORD)
    event = only_event()
    assert (event.action, event.actor, event.object_id) == (
        AuditAction.USER_CREATED,
        administrator,
        str(user.pk),
    )
    assert event.after["role"] == "PATHOLOGIST"
    assert STRONG_PASSWORD not in str(event.after)


def test_user_create_refuses_a_weak_password(administrator):
    with pytest.raises(ValidationError):
        user_create(actor=administrator, username="weak", password="password", role=Role.LAB_STAFF)
    assert not User.objects.filter(username="weak").exists()
    assert AuditEvent.objects.count() == 0


def test_user_create_refuses_a_taken_username(administrator, lab_staff):
    with pytest.raises(ValidationError):
        user_create(
            actor=administrator, username=lab_staff.username, password=STRONG_PASSWORD, role=Role.ADMIN
        )


def test_user_role_change_replaces_the_role_and_audits(administrator, lab_staff):
    user_role_change(actor=administrator, user=lab_staff, role=Role.PATHOLOGIST, reason="promoted")
    lab_staff.refresh_from_db()
    assert list(lab_staff.groups.values_list("name", flat=True)) == ["PATHOLOGIST"]
    assert lab_staff.has_perm("audit.view_auditevent")
    event = only_event()
    assert (event.action, event.before, event.after, event.reason) == (
        AuditAction.USER_ROLE_CHANGED,
        {"role": "LAB_STAFF"},
        {"role": "PATHOLOGIST"},
        "promoted",
    )


def test_the_last_active_admin_cannot_lose_the_role(administrator):
    with pytest.raises(ValidationError, match="last active admin"):
        user_role_change(actor=administrator, user=administrator, role=Role.LAB_STAFF)
    assert administrator.role == Role.ADMIN
    assert AuditEvent.objects.count() == 0


def test_user_deactivate_blocks_login_revokes_token_and_audits(administrator, lab_staff, client):
    Token.objects.create(user=lab_staff)
    user_deactivate(actor=administrator, user=lab_staff, reason="left the lab")
    lab_staff.refresh_from_db()
    assert not lab_staff.is_active
    assert not Token.objects.filter(user=lab_staff).exists()
    event = only_event()
    assert (event.action, event.after, event.reason) == (
        AuditAction.USER_DEACTIVATED,
        {"is_active": False},
        "left the lab",
    )
    client.post(reverse("accounts:login"), {"username": "lab", "password": "correct-horse-battery-staple"})
    assert "_auth_user_id" not in client.session


def test_an_admin_cannot_deactivate_themselves(administrator):
    with pytest.raises(ValidationError, match="your own"):
        user_deactivate(actor=administrator, user=administrator, reason="testing")


def test_user_reactivate_restores_access_and_audits(administrator, lab_staff):
    lab_staff.is_active = False
    lab_staff.save()
    user_reactivate(actor=administrator, user=lab_staff)
    lab_staff.refresh_from_db()
    assert lab_staff.is_active
    assert only_event().action == AuditAction.USER_REACTIVATED


def test_reactivating_an_active_user_fails(administrator, lab_staff):
    with pytest.raises(ValidationError, match="already active"):
        user_reactivate(actor=administrator, user=lab_staff)


def test_user_password_reset_sets_the_password_and_audits_without_it(administrator, lab_staff):
    Token.objects.create(user=lab_staff)
    user_password_reset(actor=administrator, user=lab_staff, new_password=STRONG_PASSWORD)
    lab_staff.refresh_from_db()
    assert lab_staff.check_password(STRONG_PASSWORD)
    assert not Token.objects.filter(user=lab_staff).exists()
    event = only_event()
    assert (event.action, event.before, event.after) == (AuditAction.USER_PASSWORD_RESET, None, None)


def test_api_token_issue_replaces_the_previous_token(lab_staff):
    first = api_token_issue(user=lab_staff)
    second = api_token_issue(user=lab_staff)
    assert list(Token.objects.filter(user=lab_staff)) == [second]
    assert first.key != second.key
    assert AuditEvent.objects.filter(action=AuditAction.API_TOKEN_ISSUED).count() == 2

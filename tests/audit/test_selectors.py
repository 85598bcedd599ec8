import datetime

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from audit.models import AuditAction
from audit.selectors import audit_chain_verify, audit_event_list, audit_event_visible_queryset
from audit.services import audit_event_record

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("audit_ids_from_start")]


def _events(actor, count: int) -> list:
    return [audit_event_record(action=AuditAction.LOGIN, actor=actor) for _ in range(count)]


def _as_superuser_without_triggers(sql: str, params: list) -> None:
    """What an attacker with database superuser rights could do despite the triggers."""
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        try:
            cursor.execute(sql, params)
        finally:
            cursor.execute("SET session_replication_role = DEFAULT")


def _emptied_as_superuser_without_triggers() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no deferred checks pending on the table
    _as_superuser_without_triggers("TRUNCATE audit_auditevent", [])


def test_an_untouched_chain_verifies(lab_staff, capsys):
    _events(lab_staff, 5)
    assert audit_chain_verify().intact
    call_command("verify_audit")
    assert "5 events verified" in capsys.readouterr().out


def test_verify_fails_when_the_trail_was_emptied(lab_staff):
    """Issue 11: after a TRUNCATE the trail verified as "intact: 0 events"."""
    _events(lab_staff, 3)
    _emptied_as_superuser_without_triggers()
    result = audit_chain_verify()
    assert not result.intact
    assert "empty but ids up to" in result.problem
    with pytest.raises(CommandError, match="Audit trail broken: the trail is empty"):
        call_command("verify_audit")


def test_verify_fails_when_the_chain_restarts_at_genesis_after_its_start_was_removed(lab_staff):
    """Issue 11: one new event after a TRUNCATE chained to genesis while the ids went on."""
    _events(lab_staff, 3)
    _emptied_as_superuser_without_triggers()
    restarted = _events(lab_staff, 1)[0]
    result = audit_chain_verify()
    assert (result.intact, result.first_broken_id) == (False, restarted.pk)
    with pytest.raises(
        CommandError, match=f"#{restarted.pk}: the trail starts at #{restarted.pk}, not at #1"
    ):
        call_command("verify_audit")


def test_verify_fails_when_the_first_events_were_deleted(lab_staff):
    events = _events(lab_staff, 4)
    _as_superuser_without_triggers("DELETE FROM audit_auditevent WHERE id <= %s", [events[1].pk])
    assert audit_chain_verify().first_broken_id == events[2].pk


def test_an_empty_trail_of_a_new_database_verifies(capsys):
    assert audit_chain_verify().intact
    call_command("verify_audit")
    assert "0 events verified" in capsys.readouterr().out


def test_verify_names_an_event_whose_content_was_changed(lab_staff):
    events = _events(lab_staff, 5)
    _as_superuser_without_triggers(
        "UPDATE audit_auditevent SET reason = %s WHERE id = %s", ["edited", events[2].pk]
    )
    result = audit_chain_verify()
    assert (result.first_broken_id, result.checked) == (events[2].pk, 2)
    with pytest.raises(CommandError, match=f"#{events[2].pk}: its content no longer matches"):
        call_command("verify_audit")


def test_verify_names_the_event_after_a_deleted_one(lab_staff):
    events = _events(lab_staff, 4)
    _as_superuser_without_triggers("DELETE FROM audit_auditevent WHERE id = %s", [events[1].pk])
    with pytest.raises(CommandError, match=f"#{events[2].pk}: its predecessor was removed"):
        call_command("verify_audit")


def test_a_rehashed_forgery_still_breaks_the_link_to_the_next_event(lab_staff):
    events = _events(lab_staff, 3)
    _as_superuser_without_triggers(
        "UPDATE audit_auditevent SET hash = %s WHERE id = %s", ["f" * 64, events[1].pk]
    )
    assert audit_chain_verify().first_broken_id == events[1].pk


def test_only_auditors_see_events(lab_staff, pathologist, administrator, outsider):
    _events(lab_staff, 2)
    assert audit_event_visible_queryset(pathologist).count() == 2
    assert audit_event_visible_queryset(administrator).count() == 2
    assert audit_event_visible_queryset(lab_staff).count() == 0
    assert audit_event_visible_queryset(outsider).count() == 0


def test_list_filters_by_actor_action_object_and_date(lab_staff, pathologist):
    audit_event_record(action=AuditAction.LOGIN, actor=lab_staff, target=lab_staff)
    audit_event_record(action=AuditAction.LOGOUT, actor=pathologist, target=pathologist)
    today = timezone.localdate()

    def actions(**filters) -> list[str]:
        return list(audit_event_list(user=pathologist, **filters).values_list("action", flat=True))

    assert actions(actor_username="LAB") == [AuditAction.LOGIN]
    assert actions(action=AuditAction.LOGOUT) == [AuditAction.LOGOUT]
    assert actions(object_type="accounts.user", object_id=str(lab_staff.pk)) == [AuditAction.LOGIN]
    assert actions(date_from=today, date_to=today) == [AuditAction.LOGOUT, AuditAction.LOGIN]
    assert actions(date_to=today - datetime.timedelta(days=1)) == []


def test_an_anchor_recorded_earlier_reveals_removed_newest_events(lab_staff, capsys):
    events = _events(lab_staff, 3)
    call_command("verify_audit")
    anchor = capsys.readouterr().out.strip().rsplit(" ", 1)[-1]
    assert anchor == events[-1].hash
    call_command("verify_audit", "--anchor", anchor)
    _as_superuser_without_triggers("DELETE FROM audit_auditevent WHERE id = %s", [events[-1].pk])
    # A superuser can remove the checkpoints as well (tests/audit/test_checkpoints.py: else they tell).
    _as_superuser_without_triggers("DELETE FROM audit_auditcheckpoint", [])
    assert audit_chain_verify().intact  # the chain alone cannot tell...
    with pytest.raises(CommandError, match="no longer in the audit chain"):
        call_command("verify_audit", "--anchor", anchor)  # ...the anchor can

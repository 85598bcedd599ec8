import pytest
from django.db import IntegrityError, connection, transaction

from audit.chain import GENESIS_HASH, audit_event_hash
from audit.context import client_address_reset, client_address_set
from audit.models import AuditAction, AuditEvent
from audit.services import audit_event_record

pytestmark = pytest.mark.django_db


def test_first_event_chains_to_genesis_and_next_to_it(lab_staff):
    first = audit_event_record(action=AuditAction.PATIENT_CREATED, actor=lab_staff, after={"mrn": "1"})
    second = audit_event_record(action=AuditAction.PATIENT_UPDATED, actor=lab_staff, before={"mrn": "1"})
    assert first.previous_hash == GENESIS_HASH
    assert second.previous_hash == first.hash
    assert audit_event_hash(AuditEvent.objects.get(pk=second.pk)) == second.hash


def test_it_records_actor_target_values_and_client_address(lab_staff):
    token = client_address_set("192.0.2.7")
    try:
        event = audit_event_record(
            action=AuditAction.USER_ROLE_CHANGED,
            actor=lab_staff,
            target=lab_staff,
            before={"role": "A"},
            after={"role": "B"},
            reason="moved team",
        )
    finally:
        client_address_reset(token)
    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.actor, stored.actor_username) == (lab_staff, "lab")
    assert (stored.object_type, stored.object_id) == ("accounts.user", str(lab_staff.pk))
    assert (stored.before, stored.after, stored.reason) == ({"role": "A"}, {"role": "B"}, "moved team")
    assert stored.client_address == "192.0.2.7"


def test_an_anonymous_actor_keeps_only_the_given_username():
    event = audit_event_record(action=AuditAction.LOGIN_FAILED, actor=None, actor_username="mallory")
    assert event.actor is None
    assert event.actor_username == "mallory"


def test_non_json_values_are_stored_as_their_json_form(lab_staff):
    import datetime

    event = audit_event_record(
        action=AuditAction.PATIENT_CREATED,
        actor=lab_staff,
        after={"date_of_birth": datetime.date(1970, 1, 2)},
    )
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.after == {"date_of_birth": "1970-01-02"}
    assert audit_event_hash(stored) == stored.hash


def test_the_event_rolls_back_with_the_change_it_records(lab_staff):
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_event_record(action=AuditAction.PATIENT_CREATED, actor=lab_staff)
        raise RuntimeError("the change failed")
    assert AuditEvent.objects.count() == 0


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_auditevent SET reason = 'x'", "DELETE FROM audit_auditevent"]
)
def test_the_database_refuses_update_and_delete(lab_staff, statement):
    audit_event_record(action=AuditAction.LOGIN, actor=lab_staff)
    with (
        pytest.raises(IntegrityError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)
    assert AuditEvent.objects.count() == 1


def test_the_orm_cannot_update_or_delete_either(lab_staff):
    event = audit_event_record(action=AuditAction.LOGIN, actor=lab_staff)
    with pytest.raises(IntegrityError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(reason="rewritten")
    with pytest.raises(IntegrityError), transaction.atomic():
        event.delete()
    assert AuditEvent.objects.get(pk=event.pk).reason == ""

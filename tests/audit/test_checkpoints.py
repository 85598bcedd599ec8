"""Issue 17: ``verify_audit`` verifies from the latest checkpoint, ``--full`` from the first event;
either checks the checkpoints it meets against the chain, and only an intact chain gets one."""

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from audit.chain import audit_event_hash
from audit.models import AuditAction, AuditCheckpoint, AuditCheckpointMode, AuditEvent
from audit.selectors import audit_chain_verify, audit_checkpoint_latest
from audit.services import audit_event_record

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("audit_ids_from_start")]


def _events(actor, count: int) -> list[AuditEvent]:
    return [audit_event_record(action=AuditAction.LOGIN, actor=actor) for _ in range(count)]


def _as_superuser_without_triggers(sql: str, params: list) -> None:
    """What an attacker with database superuser rights could do despite the triggers."""
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        try:
            cursor.execute(sql, params)
        finally:
            cursor.execute("SET session_replication_role = DEFAULT")


def _edit_reason(event: AuditEvent, *, rehash: bool = False) -> None:
    """Change an event's content; with ``rehash`` also give it the hash of its new content."""
    event.reason = "edited"
    new_hash = audit_event_hash(event) if rehash else event.hash
    _as_superuser_without_triggers(
        "UPDATE audit_auditevent SET reason = %s, hash = %s WHERE id = %s", ["edited", new_hash, event.pk]
    )


def _verify_fails(*args: str, match: str) -> None:
    checkpoints = AuditCheckpoint.objects.count()
    with pytest.raises(CommandError, match=match) as failure:
        call_command("verify_audit", *args)
    assert failure.value.returncode == 3
    assert AuditCheckpoint.objects.count() == checkpoints, "a failed run wrote a checkpoint"


def test_a_successful_run_writes_a_checkpoint_at_the_head(lab_staff, capsys):
    events = _events(lab_staff, 5)
    call_command("verify_audit")
    checkpoint = AuditCheckpoint.objects.get()
    assert (checkpoint.last_event_id, checkpoint.last_event_hash) == (events[-1].pk, events[-1].hash)
    assert (checkpoint.event_count, checkpoint.events_verified) == (5, 5)
    assert checkpoint.mode == AuditCheckpointMode.FULL
    assert checkpoint.run_by.endswith("manage.py verify_audit")
    assert checkpoint.duration.total_seconds() >= 0
    assert f"checkpoint #{checkpoint.pk} written at event #{events[-1].pk}" in capsys.readouterr().out


def test_the_next_run_verifies_only_the_events_after_the_checkpoint(lab_staff, capsys):
    _events(lab_staff, 5)
    call_command("verify_audit")
    first = AuditCheckpoint.objects.get()
    newer = _events(lab_staff, 3)
    capsys.readouterr()
    call_command("verify_audit")
    second = audit_checkpoint_latest()
    assert (second.last_event_id, second.event_count, second.events_verified) == (newer[-1].pk, 8, 3)
    assert second.mode == AuditCheckpointMode.INCREMENTAL
    assert f"3 events verified after checkpoint #{first.pk}" in capsys.readouterr().out


def test_an_empty_trail_verifies_without_a_checkpoint(capsys):
    call_command("verify_audit")
    assert not AuditCheckpoint.objects.exists()
    assert "no checkpoint (no events)" in capsys.readouterr().out


def test_a_broken_chain_names_the_first_bad_event_and_writes_no_checkpoint(lab_staff):
    events = _events(lab_staff, 4)
    _edit_reason(events[1])
    _edit_reason(events[3])
    _verify_fails(match=f"#{events[1].pk}: its content no longer matches its hash .*No checkpoint written")


def test_incremental_verification_detects_tampering_after_the_checkpoint(lab_staff):
    _events(lab_staff, 3)
    call_command("verify_audit")
    newer = _events(lab_staff, 3)
    _edit_reason(newer[1], rehash=True)  # a consistent forgery still breaks the next event's link
    _verify_fails(match=f"#{newer[2].pk}: its predecessor was removed or altered")


def test_only_full_verification_finds_tampering_inside_the_checkpointed_prefix(lab_staff, capsys):
    events = _events(lab_staff, 5)
    call_command("verify_audit")
    _edit_reason(events[1])
    call_command("verify_audit")  # the prefix is not rehashed: that is what makes it fast
    _verify_fails("--full", match=f"#{events[1].pk}: its content no longer matches")


def test_a_checkpoint_whose_event_no_longer_has_the_recorded_hash_is_reported(lab_staff):
    events = _events(lab_staff, 4)
    call_command("verify_audit")
    checkpoint = AuditCheckpoint.objects.get()
    _edit_reason(events[-1], rehash=True)
    _verify_fails(match=f"#{events[-1].pk}: its hash is not the one checkpoint #{checkpoint.pk} recorded")
    _verify_fails("--full", match=f"#{events[-1].pk}: its hash is not the one checkpoint #{checkpoint.pk}")


def test_a_checkpoints_event_whose_content_changed_is_reported(lab_staff):
    events = _events(lab_staff, 3)
    call_command("verify_audit")
    _edit_reason(events[-1])
    _verify_fails(match=f"#{events[-1].pk}: its content no longer matches its hash")


def test_events_removed_before_the_checkpoint_are_detected_at_the_boundary(lab_staff):
    events = _events(lab_staff, 5)
    call_command("verify_audit")
    checkpoint = AuditCheckpoint.objects.get()
    _as_superuser_without_triggers("DELETE FROM audit_auditevent WHERE id = %s", [events[2].pk])
    _verify_fails(match=f"#{events[-1].pk}: 4 events lead up to it but checkpoint #{checkpoint.pk} counted 5")
    _verify_fails("--full", match=f"#{events[3].pk}: its predecessor was removed")


def test_removed_newest_events_are_revealed_by_the_checkpoint_that_verified_them(lab_staff):
    events = _events(lab_staff, 4)
    call_command("verify_audit")
    _as_superuser_without_triggers("DELETE FROM audit_auditevent WHERE id >= %s", [events[2].pk])
    _verify_fails(match=f"#{events[-1].pk}: checkpoint #\\d+ verified up to it, and it is gone")
    _verify_fails("--full", match=f"#{events[-1].pk}: .* and the trail now ends at #{events[1].pk}")


def test_full_verification_checks_every_checkpoint_it_passes(lab_staff):
    events = _events(lab_staff, 6)
    call_command("verify_audit")
    forged = AuditCheckpoint.objects.create(
        **{**_checkpoint_fields(AuditCheckpoint.objects.get()), "last_event_id": events[2].pk}
    )
    assert audit_chain_verify().first_broken_id == events[2].pk  # wrong hash for event 3
    _verify_fails("--full", match=f"#{events[2].pk}: its hash is not the one checkpoint #{forged.pk}")


def test_full_verification_reports_a_checkpoint_counting_another_chain_length(lab_staff):
    events = _events(lab_staff, 3)
    call_command("verify_audit")
    fields = _checkpoint_fields(AuditCheckpoint.objects.get())
    AuditCheckpoint.objects.create(**{**fields, "event_count": 2})
    _verify_fails("--full", match=f"#{events[-1].pk}: it is event 3 of the chain but was event 2")


def _checkpoint_fields(checkpoint: AuditCheckpoint) -> dict:
    return {
        field.name: getattr(checkpoint, field.name)
        for field in AuditCheckpoint._meta.fields
        if field.name != "id"
    }


def test_checkpoints_refuse_update_delete_and_truncate(lab_staff):
    _events(lab_staff, 2)
    call_command("verify_audit")
    checkpoint = AuditCheckpoint.objects.get()
    checkpoint.event_count = 1
    for change in (checkpoint.save, checkpoint.delete, AuditCheckpoint.objects.all().delete):
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
            change()
    with (
        pytest.raises(IntegrityError, match="TRUNCATE refused"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("TRUNCATE audit_auditcheckpoint")
    assert AuditCheckpoint.objects.get().event_count == 2


def test_progress_is_reported_every_n_events_with_percent_and_rate(lab_staff, capsys):
    _events(lab_staff, 10)
    call_command("verify_audit", "--batch-size", "3", "--progress-every", "4")
    lines = [line for line in capsys.readouterr().out.splitlines() if "verified" in line and "of" in line]
    reported = [line.split(" of ")[0].rsplit(" ", 1)[-1] for line in lines if line.startswith("  verified")]
    assert reported == ["6", "9", "10"]  # after the batches crossing 4 and 8, and at the end
    assert "verified 10 of 10 events (100.0 %)" in lines[2]
    assert "events/s" in lines[2]


def test_events_are_read_in_keyset_batches_never_all_at_once(lab_staff):
    _events(lab_staff, 10)
    with CaptureQueriesContext(connection) as queries:
        result = audit_chain_verify(batch_size=3)
    assert (result.intact, result.checked, result.event_count) == (True, 10, 10)
    batches = [q["sql"] for q in queries if "LIMIT 3" in q["sql"] and "audit_auditevent" in q["sql"]]
    assert len(batches) == 4  # 3 + 3 + 3 + 1
    assert all('"audit_auditevent"."id" >' in sql for sql in batches)
    # One condition on id: a second one made PostgreSQL sort the rest of the table per batch when
    # the table had no statistics yet (docs/performance.md).
    assert not [sql for sql in batches if '"audit_auditevent"."id" <=' in sql]


def test_events_appended_during_a_run_are_left_for_the_next_one(lab_staff):
    events = _events(lab_staff, 6)

    def append_one(progress) -> None:  # noqa: ANN001
        audit_event_record(action=AuditAction.LOGOUT, actor=lab_staff)

    result = audit_chain_verify(batch_size=2, progress=append_one, progress_every=2)
    assert (result.intact, result.head_id, result.event_count) == (True, events[-1].pk, 6)
    assert AuditEvent.objects.count() == 9
    assert audit_chain_verify().event_count == 9

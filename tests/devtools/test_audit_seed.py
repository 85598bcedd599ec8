"""``seed_audit_chain`` appends a long chain in bulk that ``verify_audit`` accepts as it is."""

import pytest
from django.core.management import CommandError, call_command

from audit.chain import audit_event_hash
from audit.models import AuditAction, AuditCheckpoint, AuditEvent
from audit.services import audit_event_record

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("audit_ids_from_start")]


def test_the_seeded_chain_continues_the_trail_and_verifies(lab_staff, capsys):
    real = audit_event_record(action=AuditAction.LOGIN, actor=lab_staff)
    call_command("seed_audit_chain", "--events", "25", "--batch-size", "10")
    assert "seeded 25 of 25 events (100.0 %)" in capsys.readouterr().out
    seeded = list(AuditEvent.objects.filter(id__gt=real.pk).order_by("id"))
    assert len(seeded) == 25
    assert seeded[0].previous_hash == real.hash
    # The model's hash (what audit_event_record writes) agrees with the bulk rows' hashes.
    assert all(audit_event_hash(event) == event.hash for event in seeded)
    assert {event.action for event in seeded} > {AuditAction.REVIEW_RECORDED, AuditAction.LOGIN}
    call_command("verify_audit", "--batch-size", "7")
    assert AuditCheckpoint.objects.get().event_count == 26


def test_seeding_after_a_checkpoint_is_verified_incrementally(lab_staff, capsys):
    call_command("seed_audit_chain", "--events", "12", "--batch-size", "5")
    call_command("verify_audit")
    call_command("seed_audit_chain", "--events", "4")
    capsys.readouterr()
    call_command("verify_audit")
    assert "4 events verified after checkpoint" in capsys.readouterr().out


def test_seeding_is_refused_on_production_settings(settings):
    settings.HEMATOVISION_DEMO_USERS_ALLOWED = False
    with pytest.raises(CommandError, match="never run it on a production database"):
        call_command("seed_audit_chain", "--events", "5")
    assert not AuditEvent.objects.exists()

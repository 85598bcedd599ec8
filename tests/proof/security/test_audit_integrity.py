"""Issue 11, finding 1, as the attacker did it: a role granted ALL (TRUNCATE included) empties the
audit trail and `verify_audit` says "intact". TRUNCATE is refused now, and a trail emptied anyway
(a superuser turning triggers off) no longer verifies."""

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction

from audit.models import AuditAction, AuditEvent
from audit.services import audit_event_record

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("audit_ids_from_start")]


def test_a_role_granted_all_cannot_truncate_the_trail_or_what_cascades_from_it(lab_staff):
    for _ in range(3):
        audit_event_record(action=AuditAction.LOGIN, actor=lab_staff)
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("CREATE ROLE hv_operator NOLOGIN")
        cursor.execute("GRANT ALL ON ALL TABLES IN SCHEMA public TO hv_operator")
        cursor.execute("SET LOCAL ROLE hv_operator")
        for statement in ("TRUNCATE audit_auditevent", "TRUNCATE cases_slide CASCADE"):
            with pytest.raises(IntegrityError, match="TRUNCATE refused"), transaction.atomic():
                cursor.execute(statement)
        cursor.execute("RESET ROLE")
    assert AuditEvent.objects.count() == 3
    call_command("verify_audit")


def test_a_trail_emptied_by_a_superuser_fails_verification_with_and_without_new_events(lab_staff):
    for _ in range(3):
        audit_event_record(action=AuditAction.LOGIN, actor=lab_staff)
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("TRUNCATE audit_auditevent")
        cursor.execute("SET session_replication_role = DEFAULT")
    with pytest.raises(CommandError, match="empty but ids up to #3 were issued"):
        call_command("verify_audit")
    audit_event_record(action=AuditAction.LOGIN, actor=lab_staff)
    with pytest.raises(CommandError, match="starts at #4, not at #1"):
        call_command("verify_audit")

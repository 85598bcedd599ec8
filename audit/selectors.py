"""Reading the audit trail."""

from dataclasses import dataclass
from datetime import date

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import connection
from django.db.models import QuerySet

from audit.chain import GENESIS_HASH, audit_event_hash
from audit.models import AuditEvent


def audit_event_visible_queryset(user: AbstractBaseUser) -> QuerySet[AuditEvent]:
    """The events ``user`` may read: all of them for auditors (admins, pathologists), else none."""
    if not user.is_authenticated or not user.has_perm("audit.view_auditevent"):
        return AuditEvent.objects.none()
    return AuditEvent.objects.select_related("actor")


def audit_event_list(
    *,
    user: AbstractBaseUser,
    actor_username: str = "",
    action: str = "",
    object_type: str = "",
    object_id: str = "",
    date_from: date | None = None,
    date_to: date | None = None,
) -> QuerySet[AuditEvent]:
    events = audit_event_visible_queryset(user)
    if actor_username:
        events = events.filter(actor_username__iexact=actor_username)
    if action:
        events = events.filter(action=action)
    if object_type:
        events = events.filter(object_type=object_type)
    if object_id:
        events = events.filter(object_id=object_id)
    if date_from:
        events = events.filter(created_at__date__gte=date_from)
    if date_to:
        events = events.filter(created_at__date__lte=date_to)
    return events.order_by("-id")


@dataclass(frozen=True)
class ChainVerification:
    checked: int
    first_broken_id: int | None = None
    problem: str = ""
    head_hash: str = GENESIS_HASH

    @property
    def intact(self) -> bool:
        return not self.problem


def _ids_issued() -> tuple[int, int]:
    """(the first id the table's sequence issues, the last it has issued so far, 0 if none)."""
    table = AuditEvent._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT start_value, COALESCE(last_value, 0) FROM pg_sequences "
                "WHERE format('%%I.%%I', schemaname, sequencename)::regclass "
                "= pg_get_serial_sequence(%s, 'id')::regclass",
                [table],
            )
            start, last = cursor.fetchone()
            return int(start), int(last)
        # SQLite: AUTOINCREMENT keeps the highest id ever issued in sqlite_sequence.
        cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
        row = cursor.fetchone()
        return 1, int(row[0]) if row else 0


def _chain_start_problem(first_id: int | None) -> str:
    """A trail emptied (TRUNCATE) or cut at its start restarts at genesis with a valid chain; only
    the ids show it: the first event must carry the first id the table ever issued."""
    start, last_issued = _ids_issued()
    if first_id is None:
        if last_issued >= start:
            return f"the trail is empty but ids up to #{last_issued} were issued: its events were removed"
        return ""
    if first_id != start:
        return (
            f"the trail starts at #{first_id}, not at #{start}: the events before it were removed "
            "(or the very first one was rolled back; see docs/security-hardening.md)"
        )
    return ""


def audit_chain_verify() -> ChainVerification:
    """Walk the chain from the first event; report the first event that does not fit."""
    expected_previous = GENESIS_HASH
    checked = 0
    first_id = AuditEvent.objects.order_by("id").values_list("id", flat=True).first()
    if problem := _chain_start_problem(first_id):
        return ChainVerification(0, first_id, problem)
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=2000):
        if event.previous_hash != expected_previous:
            return ChainVerification(checked, event.pk, "its predecessor was removed or altered")
        if audit_event_hash(event) != event.hash:
            return ChainVerification(checked, event.pk, "its content no longer matches its hash")
        expected_previous = event.hash
        checked += 1
    return ChainVerification(checked, head_hash=expected_previous)


def audit_anchor_present(anchor_hash: str) -> bool:
    """A head hash recorded outside the database earlier must still be in the chain.

    The chain alone cannot reveal removed newest events, or a chain rewritten from scratch by
    someone with superuser rights; an anchor kept elsewhere can.
    """
    return AuditEvent.objects.filter(hash=anchor_hash).exists()

"""Reading the audit trail."""

from dataclasses import dataclass
from datetime import date

from django.contrib.auth.base_user import AbstractBaseUser
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
        return self.first_broken_id is None


def audit_chain_verify() -> ChainVerification:
    """Walk the chain from the first event; report the first event that does not fit."""
    expected_previous = GENESIS_HASH
    checked = 0
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

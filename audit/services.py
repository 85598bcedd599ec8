"""Writing the audit trail. Each event is chained to the previous one by a SHA-256 hash."""

import datetime
import json
import time
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.utils import timezone

from audit.chain import GENESIS_HASH, audit_event_hash
from audit.context import client_address_current
from audit.models import AuditAction, AuditCheckpoint, AuditCheckpointMode, AuditEvent
from audit.selectors import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_PROGRESS_EVERY,
    ChainVerification,
    ProgressCallback,
    audit_chain_verify,
    audit_checkpoint_latest,
)

# Arbitrary constant identifying the audit chain's advisory lock on PostgreSQL.
_CHAIN_LOCK_KEY = 0x48564155  # "HVAU"


def _json_safe(value: Any) -> Any:
    """The exact JSON value the database will hand back, so the hash can be recomputed later."""
    if value is None:
        return None
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _chain_lock() -> None:
    # Serialises writers until their transaction ends, so two events never share a predecessor.
    # SQLite needs nothing here: its IMMEDIATE transactions already hold the write lock.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])


def audit_event_record(
    *,
    action: AuditAction,
    actor: AbstractBaseUser | None,
    target: models.Model | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str = "",
    actor_username: str = "",
) -> AuditEvent:
    """Append one event. Call it inside the transaction that makes the change it records."""
    user = actor if actor is not None and actor.is_authenticated else None
    with transaction.atomic():
        _chain_lock()
        previous_hash = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first()
        event = AuditEvent(
            created_at=timezone.now(),
            actor=user,
            actor_username=user.get_username() if user else actor_username,
            action=action,
            object_type=target._meta.label_lower if target is not None else "",
            object_id=str(target.pk) if target is not None else "",
            before=_json_safe(before),
            after=_json_safe(after),
            reason=reason,
            client_address=client_address_current(),
            previous_hash=previous_hash or GENESIS_HASH,
        )
        event.hash = audit_event_hash(event)
        event.save(force_insert=True)
    return event


def audit_trail_export_record(
    *, actor: AbstractBaseUser, filters: dict[str, str], event_count: int
) -> AuditEvent:
    """Exports of the trail are themselves events: who took a copy of what."""
    return audit_event_record(
        action=AuditAction.AUDIT_EXPORTED,
        actor=actor,
        after={"filters": filters, "event_count": event_count, "format": "csv"},
    )


def audit_chain_verify_and_checkpoint(
    *,
    full: bool,
    run_by: str,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: ProgressCallback | None = None,
    progress_every: int = DEFAULT_PROGRESS_EVERY,
) -> tuple[ChainVerification, AuditCheckpoint | None]:
    """Verify from the latest checkpoint (or from the first event when ``full``) and, when the
    chain is intact and not empty, record a checkpoint at its head for the next run to start from.
    A broken chain writes nothing."""
    started_at, started = timezone.now(), time.monotonic()
    since = None if full else audit_checkpoint_latest()
    result = audit_chain_verify(
        from_checkpoint=since, batch_size=batch_size, progress=progress, progress_every=progress_every
    )
    if not result.intact or result.head_id is None:
        return result, None
    checkpoint = AuditCheckpoint.objects.create(
        last_event_id=result.head_id,
        last_event_hash=result.head_hash,
        event_count=result.event_count,
        events_verified=result.checked,
        mode=AuditCheckpointMode.INCREMENTAL if since is not None else AuditCheckpointMode.FULL,
        run_by=run_by[:200],
        created_at=started_at,
        duration=datetime.timedelta(seconds=time.monotonic() - started),
    )
    return result, checkpoint

"""The hash that links each audit event to the one before it."""

import hashlib
import json

from audit.models import AuditEvent

GENESIS_HASH = "0" * 64


def audit_event_hash(event: AuditEvent) -> str:
    payload = {
        "previous_hash": event.previous_hash,
        "created_at": event.created_at.isoformat(),
        "actor_id": event.actor_id,
        "actor_username": event.actor_username,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "before": event.before,
        "after": event.after,
        "reason": event.reason,
        "client_address": event.client_address,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()

"""The hash that links each audit event to the one before it."""

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from audit.models import AuditEvent

GENESIS_HASH = "0" * 64
# The fields each hash covers, in the order of the rows ``audit_row_hash`` takes: verification
# and bulk seeding read rows as tuples (no model instances), and hash them the same way.
HASHED_FIELDS = (
    "previous_hash",
    "created_at",
    "actor_id",
    "actor_username",
    "action",
    "object_type",
    "object_id",
    "before",
    "after",
    "reason",
    "client_address",
)


def audit_row_hash(row: Sequence[Any]) -> str:
    """The hash of one event given as its ``HASHED_FIELDS`` values, in that order."""
    payload = dict(zip(HASHED_FIELDS, row, strict=True))
    payload["created_at"] = payload["created_at"].isoformat()
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def audit_event_hash(event: AuditEvent) -> str:
    return audit_row_hash([getattr(event, field) for field in HASHED_FIELDS])

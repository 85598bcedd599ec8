"""A long, valid audit chain written in bulk, to measure ``verify_audit`` at a year's size (issue 17).

Events are hashed with ``audit.chain.audit_row_hash``, the function ``audit_event_record`` and
verification use, and go in with PostgreSQL's ``COPY`` (``bulk_create`` elsewhere), one
transaction per batch chained onto the head under the chain's lock: an interrupted seed leaves a
valid, shorter chain. Never for a clinical database: the events describe nothing that happened.
"""

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction

from accounts.models import User
from audit.chain import GENESIS_HASH, HASHED_FIELDS, audit_row_hash
from audit.models import AuditAction, AuditEvent
from audit.services import _CHAIN_LOCK_KEY

# (action, object type, before, after, reason): a day of a lab, roughly, repeated.
EVENT_KINDS = (
    (AuditAction.CELL_IMAGE_UPLOADED, "cases.cellimage", None, {"slide": 0}, ""),
    (
        AuditAction.INFERENCE_JOB_FINISHED,
        "classifier.inferencejob",
        {"status": "running"},
        {"status": "succeeded"},
        "",
    ),
    (
        AuditAction.REVIEW_RECORDED,
        "classifier.review",
        None,
        {"decision": "confirmed", "label": "neutrophil"},
        "",
    ),
    (
        AuditAction.REVIEW_RECORDED,
        "classifier.review",
        None,
        {"decision": "corrected", "label": "lymphocyte"},
        "reactive",
    ),
    (AuditAction.SLIDE_STATUS_CHANGED, "cases.slide", {"status": "in_review"}, {"status": "signed"}, ""),
    (AuditAction.LOGIN, "accounts.user", None, None, ""),
)
ADDRESSES = ("10.0.0.12", "10.0.0.31", "2001:db8::7", "")


@dataclass(frozen=True)
class SeedProgress:
    written: int
    total: int
    seconds: float


def _event_rows(
    first: int, count: int, *, start: datetime, step: timedelta, actors: list[tuple]
) -> Iterator[list]:
    """The events' ``HASHED_FIELDS`` values after ``previous_hash``, as the database returns them."""
    for number in range(first, first + count):
        action, object_type, before, after, reason = EVENT_KINDS[number % len(EVENT_KINDS)]
        actor_id, username = actors[number % len(actors)]
        yield [
            start + step * number,
            actor_id,
            username,
            action.value,
            object_type,
            str(number // 7 + 1),
            before,
            {**after, "seeded": number} if after is not None else None,
            reason,
            ADDRESSES[number % len(ADDRESSES)],
        ]


def _chained(rows: Iterator[list], previous_hash: str) -> list[list]:
    chained = []
    for row in rows:
        row.insert(0, previous_hash)
        previous_hash = audit_row_hash(row)
        chained.append([*row, previous_hash])
    return chained


def _head_hash() -> str:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])
    return AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first() or GENESIS_HASH


def _insert(rows: list[list]) -> None:
    columns = (*HASHED_FIELDS, "hash")
    if connection.vendor != "postgresql":
        AuditEvent.objects.bulk_create(AuditEvent(**dict(zip(columns, row, strict=True))) for row in rows)
        return
    json_at = [columns.index("before"), columns.index("after")]
    with (
        connection.cursor() as cursor,
        cursor.copy(f"COPY audit_auditevent ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        for row in rows:
            for index in json_at:
                row[index] = None if row[index] is None else json.dumps(row[index])
            copy.write_row(row)


def audit_chain_seed(
    *,
    events: int,
    batch_size: int = 50_000,
    days: int = 365,
    progress: Callable[[SeedProgress], None] | None = None,
) -> int:
    """Append ``events`` valid events to the chain, spread over the last ``days``; return how many."""
    actors = [(user.pk, user.username) for user in User.objects.order_by("pk")[:20]] or [(None, "seed")]
    start, step = datetime.now(UTC) - timedelta(days=days), timedelta(days=days) / max(events, 1)
    began = time.monotonic()
    for first in range(0, events, batch_size):
        count = min(batch_size, events - first)
        with transaction.atomic():
            rows = _chained(_event_rows(first, count, start=start, step=step, actors=actors), _head_hash())
            _insert(rows)
        if progress is not None:
            progress(SeedProgress(first + count, events, time.monotonic() - began))
    return events

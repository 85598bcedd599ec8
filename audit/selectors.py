"""Reading the audit trail."""

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import connection
from django.db.models import Max, QuerySet

from audit.chain import GENESIS_HASH, HASHED_FIELDS, audit_row_hash
from audit.models import AuditCheckpoint, AuditEvent


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


DEFAULT_BATCH_SIZE = 5_000
DEFAULT_PROGRESS_EVERY = 100_000
# What a verification reads of each event: its id and stored hash, then what the hash covers.
_ROW_FIELDS = ("id", "hash", *HASHED_FIELDS)


@dataclass(frozen=True)
class ChainVerification:
    checked: int  # events whose hashes this run recomputed (before the broken one, if any)
    first_broken_id: int | None = None
    problem: str = ""
    head_hash: str = GENESIS_HASH
    head_id: int | None = None
    event_count: int = 0  # the chain's length up to the head (checkpointed prefix included)
    since: AuditCheckpoint | None = None  # where an incremental run started

    @property
    def intact(self) -> bool:
        return not self.problem


@dataclass(frozen=True)
class VerificationProgress:
    checked: int
    total: int
    seconds: float

    @property
    def percent(self) -> float:
        return 100.0 * self.checked / self.total if self.total else 100.0

    @property
    def events_per_second(self) -> float:
        return self.checked / self.seconds if self.seconds > 0 else 0.0


ProgressCallback = Callable[[VerificationProgress], None]


@dataclass
class _Walk:
    """Where the walk stands: the last event accepted, its hash, and the chain's length there."""

    after_id: int = 0
    expected_previous: str = GENESIS_HASH
    event_count: int = 0
    checked: int = 0
    since: AuditCheckpoint | None = None

    def broken(self, event_id: int, problem: str) -> ChainVerification:
        return ChainVerification(self.checked, event_id, problem, since=self.since)


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


def audit_checkpoint_latest() -> AuditCheckpoint | None:
    return AuditCheckpoint.objects.order_by("-id").first()


def _walk_from(checkpoint: AuditCheckpoint) -> _Walk | ChainVerification:
    """Resume after ``checkpoint``, once its event is shown to be the one it verified: same hash,
    content still matching it, and as many events up to it as then."""
    walk = _Walk(
        checkpoint.last_event_id, checkpoint.last_event_hash, checkpoint.event_count, since=checkpoint
    )
    event_id = checkpoint.last_event_id
    row = AuditEvent.objects.filter(id=event_id).values_list(*_ROW_FIELDS).first()
    if row is None:
        return walk.broken(event_id, f"checkpoint #{checkpoint.pk} verified up to it, and it is gone")
    if row[1] != checkpoint.last_event_hash:
        return walk.broken(event_id, f"its hash is not the one checkpoint #{checkpoint.pk} recorded")
    if audit_row_hash(row[2:]) != row[1]:
        return walk.broken(event_id, "its content no longer matches its hash")
    leading = AuditEvent.objects.filter(id__lte=event_id).count()
    if leading != checkpoint.event_count:
        return walk.broken(
            event_id,
            f"{leading} events lead up to it but checkpoint #{checkpoint.pk} counted "
            f"{checkpoint.event_count}: events before it were removed or added (verify with --full)",
        )
    return walk


def _checkpoint_disagreement(
    walk: _Walk, rows: list[tuple], position: dict[int, int]
) -> ChainVerification | None:
    """Every checkpoint whose event lies in this batch must name it with its hash and position."""
    by_id = {row[0]: row for row in rows}
    checkpoints = AuditCheckpoint.objects.filter(
        last_event_id__gt=walk.after_id, last_event_id__lte=rows[-1][0]
    )
    for checkpoint in checkpoints.order_by("last_event_id", "id"):
        row = by_id.get(checkpoint.last_event_id)
        if row is None:
            problem = f"checkpoint #{checkpoint.pk} verified up to it, and it is gone"
        elif row[1] != checkpoint.last_event_hash:
            problem = f"its hash is not the one checkpoint #{checkpoint.pk} recorded"
        elif position[row[0]] != checkpoint.event_count:
            problem = (
                f"it is event {position[row[0]]} of the chain but was event {checkpoint.event_count} "
                f"when checkpoint #{checkpoint.pk} was written: events before it were removed or added"
            )
        else:
            continue
        return walk.broken(checkpoint.last_event_id, problem)
    return None


def _batch_verify(walk: _Walk, rows: list[tuple]) -> ChainVerification | None:
    position: dict[int, int] = {}
    expected_previous, count = walk.expected_previous, walk.event_count
    for offset, row in enumerate(rows):
        if row[2] != expected_previous:
            return ChainVerification(
                walk.checked + offset, row[0], "its predecessor was removed or altered", since=walk.since
            )
        if audit_row_hash(row[2:]) != row[1]:
            return ChainVerification(
                walk.checked + offset, row[0], "its content no longer matches its hash", since=walk.since
            )
        expected_previous, count = row[1], count + 1
        position[row[0]] = count
    if disagreement := _checkpoint_disagreement(walk, rows, position):
        return disagreement
    walk.after_id, walk.expected_previous, walk.event_count = rows[-1][0], expected_previous, count
    walk.checked += len(rows)
    return None


def _newest_removed(walk: _Walk) -> ChainVerification | None:
    """A checkpoint past the newest event: events it verified were removed from the end."""
    newest = AuditEvent.objects.aggregate(newest=Max("id"))["newest"] or 0
    beyond = AuditCheckpoint.objects.filter(last_event_id__gt=newest).order_by("last_event_id").first()
    if beyond is None:
        return None
    return walk.broken(
        beyond.last_event_id,
        f"checkpoint #{beyond.pk} verified up to it, and the trail now ends at #{newest}",
    )


def audit_chain_verify(
    *,
    from_checkpoint: AuditCheckpoint | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: ProgressCallback | None = None,
    progress_every: int = DEFAULT_PROGRESS_EVERY,
) -> ChainVerification:
    """Walk the chain from the first event, or from just after ``from_checkpoint``; report the
    first event that does not fit. Events are read in keyset-paginated batches of ``batch_size``
    (one short query each, memory bounded by the batch), up to the newest event when it starts."""
    first_id = AuditEvent.objects.order_by("id").values_list("id", flat=True).first()
    if problem := _chain_start_problem(first_id):
        return ChainVerification(0, first_id, problem)
    walk = _walk_from(from_checkpoint) if from_checkpoint is not None else _Walk()
    if isinstance(walk, ChainVerification):
        return walk
    head_id = AuditEvent.objects.aggregate(newest=Max("id"))["newest"] or 0
    total = AuditEvent.objects.filter(id__gt=walk.after_id, id__lte=head_id).count()
    started, next_report = time.monotonic(), progress_every
    while walk.after_id < head_id:
        # One condition on id, the head applied here: with a second range condition and no
        # statistics yet (after a bulk load) the planner sorted the whole rest of the table per batch.
        batch = AuditEvent.objects.filter(id__gt=walk.after_id).order_by("id").values_list(*_ROW_FIELDS)
        rows = [row for row in batch[:batch_size] if row[0] <= head_id]
        if not rows:
            break
        if broken := _batch_verify(walk, rows):
            return broken
        if progress is not None and (walk.checked >= next_report or walk.after_id >= head_id):
            progress(VerificationProgress(walk.checked, total, time.monotonic() - started))
            next_report = (walk.checked // progress_every + 1) * progress_every
    if broken := _newest_removed(walk):
        return broken
    return ChainVerification(
        walk.checked,
        head_hash=walk.expected_previous,
        head_id=walk.after_id or None,
        event_count=walk.event_count,
        since=walk.since,
    )


def audit_anchor_present(anchor_hash: str) -> bool:
    """A head hash recorded outside the database earlier must still be in the chain.

    The chain alone cannot reveal removed newest events, or a chain rewritten from scratch by
    someone with superuser rights; an anchor kept elsewhere can.
    """
    return AuditEvent.objects.filter(hash=anchor_hash).exists()

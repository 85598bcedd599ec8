"""CSV rendering of audit events."""

import csv
import json
from collections.abc import Iterable, Iterator

from audit.models import AuditEvent
from core.csv_safety import csv_cell_escape

CSV_COLUMNS = [
    "id",
    "created_at",
    "actor_username",
    "action",
    "object_type",
    "object_id",
    "before",
    "after",
    "reason",
    "client_address",
    "previous_hash",
    "hash",
]


def _row(event: AuditEvent) -> list[str]:
    values = {
        "created_at": event.created_at.isoformat(),
        "before": json.dumps(event.before, sort_keys=True) if event.before is not None else "",
        "after": json.dumps(event.after, sort_keys=True) if event.after is not None else "",
    }
    return [csv_cell_escape(values.get(column, getattr(event, column))) for column in CSV_COLUMNS]


class _Echo:
    def write(self, value: str) -> str:
        return value


def audit_events_csv_lines(events: Iterable[AuditEvent]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for event in events:
        yield writer.writerow(_row(event))

import datetime

import pytest

from audit.exports import CSV_COLUMNS, audit_events_csv_lines
from audit.models import AuditAction, AuditEvent
from core.csv_safety import csv_cell_escape as csv_safe


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+x", "'+x"),
        ("-2", "'-2"),
        ("@SUM", "'@SUM"),
        ("\tx", "'\tx"),
        ("plain", "plain"),
        (None, ""),
    ],
)
def test_csv_safe_neutralises_formulas(value, expected):
    assert csv_safe(value) == expected


def test_csv_lines_start_with_the_header_and_render_json_values():
    event = AuditEvent(
        id=7,
        created_at=datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
        actor_username="lab",
        action=AuditAction.PATIENT_UPDATED,
        object_type="cases.patient",
        object_id="3",
        before={"b": 1, "a": 2},
        after=None,
        reason="",
        client_address="",
        previous_hash="0" * 64,
        hash="1" * 64,
    )
    header, row = list(audit_events_csv_lines([event]))
    assert header.strip() == ",".join(CSV_COLUMNS)
    assert row.startswith(
        '7,2026-01-02T03:04:05+00:00,lab,patient.updated,cases.patient,3,"{""a"": 2, ""b"": 1}",'
    )

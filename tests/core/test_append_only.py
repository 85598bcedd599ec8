"""Every clinical table is append-only at the database level, on PostgreSQL (the test database)
and on SQLite (the quick start, migrated from scratch here): UPDATE and DELETE are refused."""

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import IntegrityError, connection, transaction

APPEND_ONLY_TABLES = [
    "audit_auditevent",
    "audit_auditcheckpoint",
    "classifier_prediction",
    "classifier_predictionfailure",
    "classifier_review",
    "classifier_slidesignature",
    "classifier_slideamendment",
    "classifier_cellexclusion",
    "classifier_slidedomainassessment",
]
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
@pytest.mark.parametrize("table", APPEND_ONLY_TABLES)
def test_postgresql_refuses_update_and_delete(table):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM information_schema.triggers WHERE event_object_table = %s "
            "AND event_manipulation IN ('UPDATE', 'DELETE')",
            [table],
        )
        assert cursor.fetchone()[0] == 2


@pytest.mark.django_db
@pytest.mark.parametrize("table", APPEND_ONLY_TABLES)
def test_postgresql_refuses_truncate_even_to_a_role_granted_all(table):
    """Issue 11: row triggers never fire on TRUNCATE, and GRANT ALL includes TRUNCATE."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE ROLE hv_granted_all NOLOGIN")  # rolled back with the test
        cursor.execute("GRANT ALL ON ALL TABLES IN SCHEMA public TO hv_granted_all")
        cursor.execute("SET LOCAL ROLE hv_granted_all")
        with pytest.raises(IntegrityError, match="append-only: TRUNCATE refused"), transaction.atomic():
            cursor.execute(f"TRUNCATE {table} CASCADE")
        cursor.execute("RESET ROLE")
        # Foreign keys add internal triggers of their own; these are the table's own.
        cursor.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal", [table]
        )
        assert cursor.fetchone()[0] >= 2  # UPDATE or DELETE per row, TRUNCATE per statement


def test_sqlite_migrated_from_scratch_keeps_every_trigger(tmp_path):
    database = tmp_path / "quick-start.sqlite3"
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_SETTINGS_MODULE": "hematovision_site.settings.base",
            "DATABASE_URL": f"sqlite:///{database}",
        },
        check=True,
        timeout=300,
    )
    with sqlite3.connect(database) as db:
        triggers = db.execute("SELECT tbl_name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
        for table in APPEND_ONLY_TABLES:
            operations = {
                op for name, sql in triggers if name == table for op in ("UPDATE", "DELETE") if op in sql
            }
            assert operations == {"UPDATE", "DELETE"}, table
        # A row to refuse changing (SQLite checks no foreign keys unless asked to).
        columns = [row[1] for row in db.execute("PRAGMA table_info(classifier_predictionfailure)")]
        values = ["x" if name in ("reason", "created_at") else 1 for name in columns]
        db.execute(
            f"INSERT INTO classifier_predictionfailure ({', '.join(columns)}) "  # noqa: S608
            f"VALUES ({', '.join('?' * len(columns))})",
            values,
        )
        for change in (
            "UPDATE classifier_predictionfailure SET reason = 'y'",
            "DELETE FROM classifier_predictionfailure",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                db.execute(change)

"""The review models moved from ``classifier`` to ``review`` by a state-only migration: a database
built by the earlier code migrates forward with every row, permission and audit event intact, on
PostgreSQL (the test database) and on SQLite (the quick start, in a process of its own)."""

import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection, transaction

from tests.review.migration_scenario import review_move_check

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("audit_ids_from_start")
def test_postgresql_database_from_before_the_move_keeps_every_row_permission_and_event():
    assert connection.vendor == "postgresql"
    checked = review_move_check()
    assert checked == {"permissions": 8, "events": checked["events"], "rows": 4}
    assert checked["events"] >= 1


def test_postgresql_keeps_refusing_changes_to_moved_rows(db, predictions, pathologist):
    from review.models import Review
    from review.services import prediction_review

    review = prediction_review(actor=pathologist, prediction=predictions[0], label=predictions[0].label)
    with pytest.raises(Exception, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE classifier_review SET reason = 'x' WHERE id = %s", [review.pk])
    assert Review.objects.get(pk=review.pk).reason == ""


def test_sqlite_database_from_before_the_move_keeps_every_row_permission_and_event(tmp_path):
    database = tmp_path / "quick-start.sqlite3"
    script = (
        "import django; django.setup()\n"
        "from django.core.management import call_command\n"
        "call_command('migrate', verbosity=0)\n"
        "from tests.review.migration_scenario import review_move_check\n"
        "print(review_move_check())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(ROOT),
            "DJANGO_SETTINGS_MODULE": "hematovision_site.settings.base",
            "DATABASE_URL": f"sqlite:///{database}",
            "MEDIA_ROOT": str(tmp_path / "media"),
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "'permissions': 8" in result.stdout and "'rows': 4" in result.stdout

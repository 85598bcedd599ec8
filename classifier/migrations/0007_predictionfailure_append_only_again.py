"""Put back the append-only triggers of prediction failures on SQLite: migration 0005 changed the
table's unique constraint, and SQLite rebuilds the table for that, dropping its triggers.
Idempotent (PostgreSQL kept them; ``CREATE OR REPLACE``)."""

from django.db import migrations

from core.append_only import append_only


class Migration(migrations.Migration):
    dependencies = [("classifier", "0006_job_heartbeat")]

    operations = [append_only("classifier_predictionfailure", reversible=False)]

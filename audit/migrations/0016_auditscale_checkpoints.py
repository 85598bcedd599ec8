"""Checkpoints of ``verify_audit`` (issue 17): append-only like the trail, TRUNCATE included.

PostgreSQL gets a row-trigger function of the audit app's own: ``classifier_refuse_change()`` is
created by a classifier migration, and apps below ``classifier`` cannot depend on its migrations.
"""

from django.db import migrations, models

from core.append_only import create_statements, drop_statements, truncate_refused

TABLE = "audit_auditcheckpoint"
POSTGRESQL_CREATE = f"""
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;
CREATE OR REPLACE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
"""
POSTGRESQL_DROP = f"""
DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE};
DROP FUNCTION IF EXISTS audit_refuse_change();
"""


def create_triggers(apps, schema_editor) -> None:  # noqa: ANN001
    vendor = schema_editor.connection.vendor
    statements = [POSTGRESQL_CREATE] if vendor == "postgresql" else create_statements(vendor, (TABLE,))
    for statement in statements:
        schema_editor.execute(statement, params=None)


def drop_triggers(apps, schema_editor) -> None:  # noqa: ANN001
    vendor = schema_editor.connection.vendor
    statements = [POSTGRESQL_DROP] if vendor == "postgresql" else drop_statements(vendor, (TABLE,))
    for statement in statements:
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0015_actions_of_merged_work"),
    ]

    operations = [
        migrations.CreateModel(
            name="AuditCheckpoint",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("last_event_id", models.BigIntegerField(db_index=True)),
                ("last_event_hash", models.CharField(max_length=64)),
                ("event_count", models.BigIntegerField()),
                (
                    "events_verified",
                    models.BigIntegerField(help_text="events whose hashes this run recomputed"),
                ),
                (
                    "mode",
                    models.CharField(
                        choices=[
                            ("full", "Full (from the first event)"),
                            ("incremental", "Incremental (from the previous checkpoint)"),
                        ],
                        max_length=16,
                    ),
                ),
                ("run_by", models.CharField(max_length=200)),
                ("created_at", models.DateTimeField()),
                ("duration", models.DurationField()),
            ],
            options={
                "ordering": ["-id"],
                "default_permissions": ("view",),
            },
        ),
        migrations.RunPython(create_triggers, drop_triggers),
        truncate_refused(TABLE),
    ]

"""Cell exclusions (append-only, like reviews: the database refuses UPDATE and DELETE) and failures
unique per job, so a retried cell can fail again with the same model version.

Reuses ``classifier_refuse_change()`` from migration 0002 on PostgreSQL.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

TABLE = "classifier_cellexclusion"
POSTGRESQL_TRIGGER = f"""
CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION classifier_refuse_change();
"""
SQLITE_TRIGGER = """
CREATE TRIGGER {table}_no_{operation} BEFORE {operation} ON {table}
    BEGIN SELECT RAISE(ABORT, '{table} is append-only: {operation} refused'); END;
"""


def _statements(vendor: str) -> list[str]:
    if vendor == "postgresql":
        return [POSTGRESQL_TRIGGER]
    if vendor == "sqlite":
        return [SQLITE_TRIGGER.format(table=TABLE, operation=operation) for operation in ("UPDATE", "DELETE")]
    raise RuntimeError(f"No append-only trigger for database vendor {vendor!r}.")


def _drop_statements(vendor: str) -> list[str]:
    if vendor == "postgresql":
        return [f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE};"]
    return [f"DROP TRIGGER IF EXISTS {TABLE}_no_{operation};" for operation in ("UPDATE", "DELETE")]


def create_triggers(apps, schema_editor) -> None:
    for statement in _statements(schema_editor.connection.vendor):
        schema_editor.execute(statement, params=None)


def drop_triggers(apps, schema_editor) -> None:
    for statement in _drop_statements(schema_editor.connection.vendor):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("cases", "0001_initial"),
        ("classifier", "0004_reviews_append_only"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="CellExclusion",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("excluded", models.BooleanField(help_text="False: an earlier exclusion is withdrawn")),
                (
                    "category",
                    models.CharField(
                        blank=True,
                        choices=[
                            ("artefact", "Artefact"),
                            ("smudge", "Smudge cell"),
                            ("unreadable", "Unreadable image"),
                            ("other", "Other"),
                        ],
                        max_length=16,
                    ),
                ),
                ("reason", models.TextField()),
                ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
            ],
            options={
                "ordering": ["cell_image_id", "-id"],
                "default_permissions": ("add", "view"),
            },
        ),
        migrations.RemoveConstraint(
            model_name="predictionfailure",
            name="prediction_failure_unique_per_model",
        ),
        migrations.AddConstraint(
            model_name="predictionfailure",
            constraint=models.UniqueConstraint(
                fields=("cell_image", "job"), name="prediction_failure_unique_per_job"
            ),
        ),
        migrations.AddField(
            model_name="cellexclusion",
            name="cell_image",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="exclusions", to="cases.cellimage"
            ),
        ),
        migrations.AddField(
            model_name="cellexclusion",
            name="decided_by",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="+", to=settings.AUTH_USER_MODEL
            ),
        ),
        migrations.AddField(
            model_name="cellexclusion",
            name="supersedes",
            field=models.OneToOneField(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="superseded_by",
                to="classifier.cellexclusion",
            ),
        ),
        migrations.AddConstraint(
            model_name="cellexclusion",
            constraint=models.CheckConstraint(
                condition=models.Q(("reason", ""), _negated=True), name="cell_exclusion_has_reason"
            ),
        ),
        migrations.AddConstraint(
            model_name="cellexclusion",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("excluded", False), models.Q(("category", ""), _negated=True), _connector="OR"
                ),
                name="cell_exclusion_has_category",
            ),
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]

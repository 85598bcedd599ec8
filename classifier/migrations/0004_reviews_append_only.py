"""Reviews, signatures and amendments are clinical records: the database refuses UPDATE and DELETE.

Reuses ``classifier_refuse_change()`` from migration 0002 on PostgreSQL.
"""

from django.db import migrations

TABLES = ("classifier_review", "classifier_slidesignature", "classifier_slideamendment")

POSTGRESQL_TRIGGER = """
CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION classifier_refuse_change();
"""
SQLITE_TRIGGER = """
CREATE TRIGGER {table}_no_{operation} BEFORE {operation} ON {table}
    BEGIN SELECT RAISE(ABORT, '{table} is append-only: {operation} refused'); END;
"""


def _statements(vendor: str) -> list[str]:
    if vendor == "postgresql":
        return [POSTGRESQL_TRIGGER.format(table=table) for table in TABLES]
    if vendor == "sqlite":
        return [
            SQLITE_TRIGGER.format(table=table, operation=operation)
            for table in TABLES
            for operation in ("UPDATE", "DELETE")
        ]
    raise RuntimeError(f"No append-only trigger for database vendor {vendor!r}.")


def _drop_statements(vendor: str) -> list[str]:
    if vendor == "postgresql":
        return [f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};" for table in TABLES]
    return [
        f"DROP TRIGGER IF EXISTS {table}_no_{operation};" for table in TABLES for operation in ("UPDATE", "DELETE")
    ]


def create_triggers(apps, schema_editor) -> None:
    for statement in _statements(schema_editor.connection.vendor):
        schema_editor.execute(statement, params=None)


def drop_triggers(apps, schema_editor) -> None:
    for statement in _drop_statements(schema_editor.connection.vendor):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("classifier", "0003_reviews_signatures_gradcam")]

    operations = [migrations.RunPython(create_triggers, drop_triggers)]

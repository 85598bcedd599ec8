"""Predictions and prediction failures are clinical records: the database refuses UPDATE and DELETE."""

from django.db import migrations

TABLES = ("classifier_prediction", "classifier_predictionfailure")

POSTGRESQL_FUNCTION = """
CREATE OR REPLACE FUNCTION classifier_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;
"""
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
        return [POSTGRESQL_FUNCTION] + [POSTGRESQL_TRIGGER.format(table=table) for table in TABLES]
    if vendor == "sqlite":
        return [
            SQLITE_TRIGGER.format(table=table, operation=operation)
            for table in TABLES
            for operation in ("UPDATE", "DELETE")
        ]
    raise RuntimeError(f"No append-only trigger for database vendor {vendor!r}.")


def _drop_statements(vendor: str) -> list[str]:
    if vendor == "postgresql":
        return [f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};" for table in TABLES] + [
            "DROP FUNCTION IF EXISTS classifier_refuse_change();"
        ]
    return [f"DROP TRIGGER IF EXISTS {table}_no_{operation};" for table in TABLES for operation in ("UPDATE", "DELETE")]


def create_triggers(apps, schema_editor) -> None:
    for statement in _statements(schema_editor.connection.vendor):
        schema_editor.execute(statement, params=None)


def drop_triggers(apps, schema_editor) -> None:
    for statement in _drop_statements(schema_editor.connection.vendor):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("classifier", "0001_initial")]

    operations = [migrations.RunPython(create_triggers, drop_triggers)]

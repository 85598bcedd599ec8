"""Database triggers that make a table append-only (UPDATE, DELETE and TRUNCATE refused), for
migrations.

PostgreSQL: one function, ``classifier_refuse_change()`` (created by migration 0002), and one
row trigger per table; row triggers never fire on TRUNCATE, so ``truncate_refused`` adds a
statement trigger per table (its function is created by each migration that uses it: apps below
``classifier`` cannot depend on its migrations).

SQLite (the quick start): one trigger per table and operation; SQLite drops a table's triggers
when a migration rebuilds the table (e.g. to change a constraint), so such a migration must put
them back.
"""

from django.db import migrations

OPERATIONS = ("UPDATE", "DELETE")
POSTGRESQL_FUNCTION = """
CREATE OR REPLACE FUNCTION classifier_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;
"""
# Idempotent, so a later migration can put back triggers that a SQLite table rebuild dropped.
POSTGRESQL_TRIGGER = """
CREATE OR REPLACE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION classifier_refuse_change();
"""
POSTGRESQL_TRUNCATE_FUNCTION = """
CREATE OR REPLACE FUNCTION hematovision_refuse_truncate() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: TRUNCATE refused', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;
"""
POSTGRESQL_TRUNCATE_TRIGGER = """
CREATE OR REPLACE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION hematovision_refuse_truncate();
"""
SQLITE_TRIGGER = """
CREATE TRIGGER IF NOT EXISTS {table}_no_{operation} BEFORE {operation} ON {table}
    BEGIN SELECT RAISE(ABORT, '{table} is append-only: {operation} refused'); END;
"""


def create_statements(vendor: str, tables: tuple[str, ...], *, with_function: bool = False) -> list[str]:
    if vendor == "postgresql":
        function = [POSTGRESQL_FUNCTION] if with_function else []
        return function + [POSTGRESQL_TRIGGER.format(table=table) for table in tables]
    if vendor == "sqlite":
        return [SQLITE_TRIGGER.format(table=table, operation=op) for table in tables for op in OPERATIONS]
    raise RuntimeError(f"No append-only trigger for database vendor {vendor!r}.")


def drop_statements(vendor: str, tables: tuple[str, ...], *, with_function: bool = False) -> list[str]:
    if vendor == "postgresql":
        function = ["DROP FUNCTION IF EXISTS classifier_refuse_change();"] if with_function else []
        return [f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};" for table in tables] + function
    return [f"DROP TRIGGER IF EXISTS {table}_no_{op};" for table in tables for op in OPERATIONS]


def append_only(*tables: str, with_function: bool = False, reversible: bool = True) -> migrations.RunPython:
    """The migration operation that adds the triggers to ``tables`` (and removes them on reverse,
    unless ``reversible`` is False: for putting back triggers an earlier migration owns)."""

    def run(statements):  # noqa: ANN001, ANN202
        def apply(apps, schema_editor) -> None:  # noqa: ANN001
            for statement in statements(schema_editor.connection.vendor, tables, with_function=with_function):
                schema_editor.execute(statement, params=None)

        return apply

    reverse = run(drop_statements) if reversible else migrations.RunPython.noop
    return migrations.RunPython(run(create_statements), reverse)


def truncate_refused(*tables: str) -> migrations.RunPython:
    """The migration operation that makes PostgreSQL refuse TRUNCATE of ``tables`` (SQLite has no
    TRUNCATE: its ``DELETE`` triggers already cover ``DELETE FROM table``)."""

    def create(apps, schema_editor) -> None:  # noqa: ANN001
        if schema_editor.connection.vendor != "postgresql":
            return
        schema_editor.execute(POSTGRESQL_TRUNCATE_FUNCTION, params=None)
        for table in tables:
            schema_editor.execute(POSTGRESQL_TRUNCATE_TRIGGER.format(table=table), params=None)

    def drop(apps, schema_editor) -> None:  # noqa: ANN001
        # The function stays: other apps' tables may still use it (CREATE OR REPLACE recreates it).
        if schema_editor.connection.vendor == "postgresql":
            for table in tables:
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};", params=None)

    return migrations.RunPython(create, drop)

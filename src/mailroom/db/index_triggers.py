"""The triggers that write `record_index_changes` (matching.address_index), per dialect.

Kept outside the migration that first made them because SQLite's batch mode rebuilds a
table to alter it and a rebuilt table loses its triggers: a later migration that alters
`records`, `record_emails` or `record_domains` in batch mode calls `create_for(op, table)`
after it (0017 does). `tests/unit/db/test_index_triggers.py` checks every trigger exists
after all migrations.
"""

from __future__ import annotations

from typing import Any

# (table, kind, key column): the key logged for a row of that table.
LOGGED = (("record_emails", "a", "address"), ("record_domains", "d", "domain"))

SQLITE = [
    *(
        f"""CREATE TRIGGER {table}_index_{op_name} AFTER {op_name.upper()} ON {table}
        BEGIN
            INSERT INTO record_index_changes (company_id, kind, key, record_id)
            VALUES ({row}.company_id, '{kind}', {row}.{column}, {row}.record_id);
        END"""
        for table, kind, column in LOGGED
        for op_name, row in (("insert", "NEW"), ("delete", "OLD"))
    ),
    *(
        f"""CREATE TRIGGER {table}_index_update AFTER UPDATE ON {table}
        BEGIN
            INSERT INTO record_index_changes (company_id, kind, key, record_id)
            VALUES (OLD.company_id, '{kind}', OLD.{column}, OLD.record_id);
            INSERT INTO record_index_changes (company_id, kind, key, record_id)
            VALUES (NEW.company_id, '{kind}', NEW.{column}, NEW.record_id);
        END"""
        for table, kind, column in LOGGED
    ),
    """CREATE TRIGGER records_index_update AFTER UPDATE OF type, account_id ON records
    WHEN OLD.type IS NOT NEW.type OR OLD.account_id IS NOT NEW.account_id
    BEGIN
        INSERT INTO record_index_changes (company_id, kind, key, record_id)
        VALUES (NEW.company_id, 'r', '', NEW.id);
    END""",
    *(
        f"""CREATE TRIGGER records_opportunity_{op_name} AFTER {op_name.upper()} ON records
        WHEN {row}.type = 'opportunity' AND {row}.account_id IS NOT NULL
        BEGIN
            INSERT INTO record_index_changes (company_id, kind, key, record_id)
            VALUES ({row}.company_id, 'o', '', {row}.account_id);
        END"""
        for op_name, row in (("insert", "NEW"), ("delete", "OLD"))
    ),
    """CREATE TRIGGER records_opportunity_update AFTER UPDATE OF type, account_id, fields
    ON records WHEN OLD.type = 'opportunity' OR NEW.type = 'opportunity'
    BEGIN
        INSERT INTO record_index_changes (company_id, kind, key, record_id)
        SELECT OLD.company_id, 'o', '', OLD.account_id WHERE OLD.account_id IS NOT NULL;
        INSERT INTO record_index_changes (company_id, kind, key, record_id)
        SELECT NEW.company_id, 'o', '', NEW.account_id WHERE NEW.account_id IS NOT NULL;
    END""",
]

POSTGRESQL = [
    *(
        f"""CREATE FUNCTION {table}_index_log() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP IN ('DELETE', 'UPDATE') THEN
                INSERT INTO record_index_changes (company_id, kind, key, record_id)
                VALUES (OLD.company_id, '{kind}', OLD.{column}, OLD.record_id);
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') THEN
                INSERT INTO record_index_changes (company_id, kind, key, record_id)
                VALUES (NEW.company_id, '{kind}', NEW.{column}, NEW.record_id);
            END IF;
            RETURN NULL;
        END $$"""
        for table, kind, column in LOGGED
    ),
    *(
        f"""CREATE TRIGGER {table}_index AFTER INSERT OR UPDATE OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION {table}_index_log()"""
        for table, _, _ in LOGGED
    ),
    """CREATE FUNCTION records_index_log() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO record_index_changes (company_id, kind, key, record_id)
        VALUES (NEW.company_id, 'r', '', NEW.id);
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER records_index AFTER UPDATE OF type, account_id ON records
    FOR EACH ROW WHEN (OLD.type IS DISTINCT FROM NEW.type
                       OR OLD.account_id IS DISTINCT FROM NEW.account_id)
    EXECUTE FUNCTION records_index_log()""",
    """CREATE FUNCTION records_opportunity_log() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('DELETE', 'UPDATE') AND OLD.type = 'opportunity'
           AND OLD.account_id IS NOT NULL THEN
            INSERT INTO record_index_changes (company_id, kind, key, record_id)
            VALUES (OLD.company_id, 'o', '', OLD.account_id);
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.type = 'opportunity'
           AND NEW.account_id IS NOT NULL THEN
            INSERT INTO record_index_changes (company_id, kind, key, record_id)
            VALUES (NEW.company_id, 'o', '', NEW.account_id);
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER records_opportunity AFTER INSERT OR DELETE OR UPDATE OF type,
    account_id, fields ON records FOR EACH ROW EXECUTE FUNCTION records_opportunity_log()""",
]


def _table_of(statement: str) -> str:
    """The table a CREATE TRIGGER/FUNCTION statement belongs to."""
    for table in ("record_emails", "record_domains", "records"):
        if f" ON {table}" in statement or f"{table}_" in statement.split("(")[0]:
            return table
    raise ValueError(statement[:60])


def statements(dialect: str, table: str | None = None) -> list[str]:
    """The CREATE statements for `dialect` (all tables, or one table's)."""
    chosen = POSTGRESQL if dialect == "postgresql" else SQLITE
    return [s for s in chosen if table is None or _table_of(s) == table]


def create_for(op: Any, table: str) -> None:
    """Re-create one table's triggers after a batch-mode rebuild (SQLite only: PostgreSQL
    alters in place and keeps them)."""
    if op.get_bind().dialect.name != "postgresql":
        for statement in statements("sqlite", table):
            op.execute(statement)


def trigger_names(dialect: str) -> list[str]:
    """The names of the triggers `statements(dialect)` creates, sorted."""
    return sorted(
        s.split("TRIGGER", 1)[1].split()[0] for s in statements(dialect) if "TRIGGER" in s
    )

"""record_index_changes: a change log of what matching looks up, written by triggers

Revision ID: 0012
Revises: 0011

Issue 15, item 2. Matching resolves addresses and domains from an in-memory index per
company (matching.address_index); this table tells every process what changed since the
index was loaded. Triggers write it, so no writer can forget: inserting, deleting or
re-addressing a `record_emails` row logs its address(es) (kind "a"); the same for
`record_domains` (kind "d"); changing a record's type or account logs the record ("r");
adding, changing or removing an opportunity logs its parent record ("o", the parent's id
in `record_id`), whose open opportunities are then read again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

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


def upgrade() -> None:
    op.create_table(
        "record_index_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=1), nullable=False),
        sa.Column("key", sa.String(length=320), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_record_index_changes_company_id", "record_index_changes", ["company_id", "id"]
    )
    statements = POSTGRESQL if op.get_bind().dialect.name == "postgresql" else SQLITE
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, _, _ in LOGGED:
            op.execute(f"DROP TRIGGER {table}_index ON {table}")
            op.execute(f"DROP FUNCTION {table}_index_log()")
        op.execute("DROP TRIGGER records_index ON records")
        op.execute("DROP FUNCTION records_index_log()")
        op.execute("DROP TRIGGER records_opportunity ON records")
        op.execute("DROP FUNCTION records_opportunity_log()")
    else:
        for table, _, _ in LOGGED:
            for op_name in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER {table}_index_{op_name}")
        op.execute("DROP TRIGGER records_index_update")
        for op_name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER records_opportunity_{op_name}")
    op.drop_table("record_index_changes")

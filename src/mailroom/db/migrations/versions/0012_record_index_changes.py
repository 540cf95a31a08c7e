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

from mailroom.db import index_triggers
from mailroom.db.index_triggers import LOGGED

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


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
    for statement in index_triggers.statements(op.get_bind().dialect.name):
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

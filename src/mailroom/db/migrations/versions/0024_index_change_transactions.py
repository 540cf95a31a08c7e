"""record_index_changes.xact: the PostgreSQL transaction that wrote each change

Revision ID: 0024
Revises: 0023

The in-memory matching index (matching.address_index) follows `record_index_changes` by
id. On PostgreSQL ids come from a sequence when a row is written, not when it commits, so
a transaction can commit a change with an id below one already applied, and a process
reading by id alone would never apply it. Each row now carries the id of the transaction
that wrote it (`pg_current_xact_id()`, as a bigint); a process remembers the transactions
that were in progress when it read the log and re-reads their rows once they end
(docs/decisions/0035-index-changes-by-transaction.md). SQLite's writers take turns, so ids
commit in order there and the column stays empty.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.add_column(
        "record_index_changes",
        sa.Column(
            "xact",
            sa.BigInteger(),
            nullable=True,
            server_default=sa.text("(pg_current_xact_id()::text::bigint)") if postgresql else None,
        ),
    )
    op.create_index("ix_record_index_changes_xact", "record_index_changes", ["company_id", "xact"])


def downgrade() -> None:
    op.drop_index("ix_record_index_changes_xact", table_name="record_index_changes")
    with op.batch_alter_table("record_index_changes") as batch:
        batch.drop_column("xact")

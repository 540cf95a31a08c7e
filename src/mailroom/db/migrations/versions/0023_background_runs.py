"""background runs: progress of the workers' relinks, server searches and rule runs

Revision ID: 0023
Revises: 0022

`background_runs` (issue 14): on PostgreSQL the long runs that serve did in daemon
threads (linking a record's stored mail, searching the server for it, running a rule on
stored mail) are Procrastinate jobs; their progress lives in this table, written with
each chunk of work, so any web process shows it and a retried job resumes from it
(docs/decisions/0030-background-runs-as-jobs.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "background_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column(
            "company_id",
            sa.Integer(),
            sa.ForeignKey("companies.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("affected", sa.Integer(), nullable=False),
        sa.Column("after", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("kind", "key", name="uq_background_runs_kind_key"),
    )
    op.create_index("ix_background_runs_company_id", "background_runs", ["company_id"])


def downgrade() -> None:
    op.drop_index("ix_background_runs_company_id", table_name="background_runs")
    op.drop_table("background_runs")

"""idle_watchers: the workers that run IDLE watchers

Revision ID: 0025
Revises: 0024

Issue 14, item 4: the watched mailboxes are spread over the live workers by rendezvous
hashing (jobs/watch.py). A worker serving only `chores` runs no watchers, yet counted as
live, so the mailboxes hashed to it were only polled. Each watching worker now writes a
row here; the hashing uses the live workers that have one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idle_watchers",
        sa.Column("worker_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("process", sa.String(300), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("idle_watchers")

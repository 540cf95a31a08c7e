"""messages.raw_location: raw messages stored in pack files

Revision ID: 0026
Revises: 0025

Issue 15, item 1: the fetch workers stage a batch's raw messages in one pack file instead
of a file each (mail/packs.py, decision 0038); a message row names its place in the pack.
Rows without one keep reading the loose blob named by raw_sha256.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("raw_location", sa.String(100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("raw_location")

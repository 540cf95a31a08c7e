"""ingest fast path: messages stored with their headers first, bodies parsed later

Revision ID: 0006
Revises: 0005

`messages.bodies_parsed` is false for a message the sync stored from its headers only
(text, HTML and attachments are still in its raw blob); sync/bodies.py fills them on
first read or in the background. Every existing row was parsed in full, hence the
server default `true`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(
            sa.Column("bodies_parsed", sa.Boolean(), server_default=sa.true(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("bodies_parsed")

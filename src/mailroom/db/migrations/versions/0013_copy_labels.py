"""copy labels: the Gmail labels of each message copy (X-GM-LABELS)

Revision ID: 0013
Revises: 0012

`message_copies.labels` is a JSON list of the labels Gmail reported for the copy
(`\\Inbox`, `\\Sent`, the user's own), set when a Gmail mailbox's All Mail copy is stored
and kept current by later syncs (sync/gmail.py); empty for every other server. A Gmail
copy's X-GM-MSGID goes in the existing `server_id` column, indexed here per mailbox so a
message already stored is found by it without fetching it again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("message_copies") as batch:
        batch.add_column(sa.Column("labels", sa.JSON(), server_default="[]", nullable=False))
        batch.create_index("ix_message_copies_server_id", ["mailbox_id", "server_id"])


def downgrade() -> None:
    with op.batch_alter_table("message_copies") as batch:
        batch.drop_index("ix_message_copies_server_id")
        batch.drop_column("labels")

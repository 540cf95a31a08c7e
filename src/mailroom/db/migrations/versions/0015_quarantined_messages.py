"""quarantined_messages: listed messages the sync could not fetch (retrying, quarantined)

Revision ID: 0015
Revises: 0014

Issue 11, item 8. A UID the server listed whose FETCH (POP3: RETR) answer was missing or
unreadable is retried, then quarantined with its error, never skipped; the folder cursor
never passes a message that is neither stored nor quarantined (sync/quarantine.py).
(Revises 0010 on this branch; renumbered on merge if another 0011 lands first.)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quarantined_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("folder", sa.String(length=500), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("server_id", sa.String(length=200), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("first_error_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_quarantined_messages_mailbox_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantined_messages")),
        sa.UniqueConstraint(
            "mailbox_id",
            "folder",
            "uidvalidity",
            "uid",
            name=op.f("uq_quarantined_messages_mailbox_id_folder_uidvalidity_uid"),
        ),
    )


def downgrade() -> None:
    op.drop_table("quarantined_messages")

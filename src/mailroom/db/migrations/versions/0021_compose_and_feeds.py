"""compose and feeds: a user's signature, a mailbox's record types, links skipped by them

Revision ID: 0021
Revises: 0020

Issue 13, items 8 and 11.
- `users.signature`: the text appended below what the user writes (above a quoted
  original), after the "-- " separator; empty means none.
- `mailbox_policies.feeds`: a JSON list of the record types the mailbox's mail may link to;
  NULL means every type (the default, so nothing changes for existing mailboxes).
- `feed_skips`: a link the linker planned but the mailbox's `feeds` setting refused, kept
  so `mailroom why` can name the setting (it answers from what ingestion stored).
(Revises 0015 on this branch; the lead renumbers on merge.)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("signature", sa.Text(), server_default="", nullable=False))
    with op.batch_alter_table("mailbox_policies") as batch:
        batch.add_column(sa.Column("feeds", sa.JSON(), nullable=True))
    op.create_table(
        "feed_skips",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("mailbox_id", sa.Integer(), nullable=True),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("feeds", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_feed_skips_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["records.id"],
            name=op.f("fk_feed_skips_record_id_records"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_feed_skips_mailbox_id_mailboxes"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_feed_skips_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_skips")),
        sa.UniqueConstraint(
            "message_id", "record_id", name=op.f("uq_feed_skips_message_id_record_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("feed_skips")
    with op.batch_alter_table("mailbox_policies") as batch:
        batch.drop_column("feeds")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("signature")

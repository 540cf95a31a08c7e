"""sync engine state

Revision ID: 0002
Revises: 0001

Adds the sync engine's state: the mailbox's backfill window, health (error kind, hint,
failure counters, backoff), the claim (owner + heartbeat), the `sync --now` request and
backfill progress; the folder's backward cursor and progress; the error log's blame and
retry time; and the POP3 UIDL of a copy. Columns that existing rows need get a server
default; the old folder stages `idle`/`syncing` become `ready`/`catchup`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ZERO = sa.text("0")
FALSE = sa.false()


def upgrade() -> None:
    with op.batch_alter_table("mailboxes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("since_date", sa.Date(), nullable=True))
        batch_op.add_column(
            sa.Column("delete_after_fetch", sa.Boolean(), nullable=False, server_default=FALSE)
        )
        batch_op.add_column(sa.Column("error_kind", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("error_hint", sa.Text(), nullable=True))
        for name in ("failure_count", "auth_failure_count"):
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default=ZERO))
        for name in ("failing_since", "last_attempt_at", "next_attempt_at", "sync_requested_at"):
            batch_op.add_column(sa.Column(name, sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("sync_owner", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        for name in ("progress_done", "progress_total", "progress_done_bytes"):
            batch_op.add_column(
                sa.Column(name, sa.BigInteger(), nullable=False, server_default=ZERO)
            )
        batch_op.add_column(
            sa.Column("progress_total_bytes", sa.BigInteger(), nullable=False, server_default=ZERO)
        )

    with op.batch_alter_table("folder_states", schema=None) as batch_op:
        batch_op.add_column(sa.Column("messages", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("backfill_below", sa.BigInteger(), nullable=True))
        for name in ("total_messages", "total_bytes", "done_messages", "done_bytes"):
            batch_op.add_column(
                sa.Column(name, sa.BigInteger(), nullable=False, server_default=ZERO)
            )
    op.execute("UPDATE folder_states SET stage = 'ready' WHERE stage = 'idle'")
    op.execute("UPDATE folder_states SET stage = 'catchup' WHERE stage = 'syncing'")

    with op.batch_alter_table("mailbox_errors", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("user_fixable", sa.Boolean(), nullable=False, server_default=FALSE)
        )
        batch_op.add_column(sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("message_copies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("server_id", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("message_copies", schema=None) as batch_op:
        batch_op.drop_column("server_id")
    with op.batch_alter_table("mailbox_errors", schema=None) as batch_op:
        batch_op.drop_column("retry_at")
        batch_op.drop_column("user_fixable")
    op.execute("UPDATE folder_states SET stage = 'idle' WHERE stage = 'ready'")
    with op.batch_alter_table("folder_states", schema=None) as batch_op:
        for name in ("done_bytes", "done_messages", "total_bytes", "total_messages"):
            batch_op.drop_column(name)
        batch_op.drop_column("backfill_below")
        batch_op.drop_column("messages")
    with op.batch_alter_table("mailboxes", schema=None) as batch_op:
        for name in (
            "progress_total_bytes",
            "progress_done_bytes",
            "progress_total",
            "progress_done",
            "heartbeat_at",
            "sync_owner",
            "sync_requested_at",
            "next_attempt_at",
            "last_attempt_at",
            "failing_since",
            "auth_failure_count",
            "failure_count",
            "error_hint",
            "error_kind",
            "delete_after_fetch",
            "since_date",
        ):
            batch_op.drop_column(name)

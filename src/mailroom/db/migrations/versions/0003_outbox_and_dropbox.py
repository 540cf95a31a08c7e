"""outbox and dropbox: per-mailbox SMTP settings, the outbox and its attempts, drop tokens

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drop_quarantine",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("envelope_from", sa.String(length=320), nullable=False),
        sa.Column("header_from", sa.String(length=320), nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("raw_sha256", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_drop_quarantine_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drop_quarantine")),
    )
    op.create_index(
        op.f("ix_drop_quarantine_company_id"), "drop_quarantine", ["company_id"], unique=False
    )
    op.create_table(
        "drop_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("unknown_senders", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_drop_tokens_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drop_tokens")),
        sa.UniqueConstraint("company_id", name=op.f("uq_drop_tokens_company_id")),
        sa.UniqueConstraint("token", name=op.f("uq_drop_tokens_token")),
    )
    op.create_table(
        "mailbox_smtp",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("security", sa.String(length=10), nullable=False),
        sa.Column("username", sa.String(length=320), nullable=True),
        sa.Column("secret", sa.LargeBinary(), nullable=True),
        sa.Column("allow_self_signed", sa.Boolean(), nullable=False),
        sa.Column("preset", sa.String(length=40), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_mailbox_smtp_mailbox_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailbox_smtp")),
        sa.UniqueConstraint("mailbox_id", name=op.f("uq_mailbox_smtp_mailbox_id")),
    )
    op.create_table(
        "outbox_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=500), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("envelope_from", sa.String(length=320), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("recipient_count", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=True),
        sa.Column("record_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error_kind", sa.String(length=40), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("hint", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stored_message_id", sa.Integer(), nullable=True),
        sa.Column("sent_folder", sa.String(length=500), nullable=True),
        sa.Column("copy_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_outbox_entries_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_outbox_entries_mailbox_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["records.id"],
            name=op.f("fk_outbox_entries_record_id_records"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["stored_message_id"],
            ["messages.id"],
            name=op.f("fk_outbox_entries_stored_message_id_messages"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_entries")),
        sa.UniqueConstraint(
            "company_id", "message_id", name=op.f("uq_outbox_entries_company_id_message_id")
        ),
    )
    op.create_index(
        "ix_outbox_entries_mailbox_created",
        "outbox_entries",
        ["mailbox_id", "created_at"],
        unique=False,
    )
    op.create_index(
        "ix_outbox_entries_status_next",
        "outbox_entries",
        ["status", "next_attempt_at"],
        unique=False,
    )
    op.create_table(
        "outbox_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("smtp_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["outbox_entries.id"],
            name=op.f("fk_outbox_attempts_entry_id_outbox_entries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_attempts")),
        sa.UniqueConstraint("entry_id", "number", name=op.f("uq_outbox_attempts_entry_id_number")),
    )


def downgrade() -> None:
    op.drop_table("outbox_attempts")
    op.drop_index("ix_outbox_entries_status_next", table_name="outbox_entries")
    op.drop_index("ix_outbox_entries_mailbox_created", table_name="outbox_entries")
    op.drop_table("outbox_entries")
    op.drop_table("mailbox_smtp")
    op.drop_table("drop_tokens")
    op.drop_index(op.f("ix_drop_quarantine_company_id"), table_name="drop_quarantine")
    op.drop_table("drop_quarantine")

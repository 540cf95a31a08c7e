"""conversations: a persisted union-find over message ids, and the subject fallback key

Revision ID: 0010
Revises: 0009

Issue 13, item 5. `conversations` labels a company's conversations; `conversation_nodes`
maps every message id (a stored message's, or one its References/In-Reply-To name) to its
conversation; `messages.subject_key` is the subject without Re:/Fwd:… prefixes, for mail
without References; `messages.threaded` is false on the rows stored before this revision
until `mailroom serve`'s backfill (matching.conversations) has threaded them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("subject_key", sa.String(length=300), nullable=True))
        batch.add_column(
            sa.Column("threaded", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.create_index("ix_messages_threaded", ["threaded"], unique=False)
        batch.create_index(
            "ix_messages_company_subject_key", ["company_id", "subject_key"], unique=False
        )
    op.create_table(
        "conversations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_conversations_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
    )
    op.create_index(
        op.f("ix_conversations_company_id"), "conversations", ["company_id"], unique=False
    )
    op.create_table(
        "conversation_nodes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("identity", sa.String(length=500), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_conversation_nodes_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_nodes_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_nodes")),
        sa.UniqueConstraint(
            "company_id", "identity", name=op.f("uq_conversation_nodes_company_id_identity")
        ),
    )
    op.create_index(
        op.f("ix_conversation_nodes_conversation_id"),
        "conversation_nodes",
        ["conversation_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_conversation_nodes_conversation_id"), table_name="conversation_nodes")
    op.drop_table("conversation_nodes")
    op.drop_index(op.f("ix_conversations_company_id"), table_name="conversations")
    op.drop_table("conversations")
    with op.batch_alter_table("messages") as batch:
        batch.drop_index("ix_messages_company_subject_key")
        batch.drop_index("ix_messages_threaded")
        batch.drop_column("threaded")
        batch.drop_column("subject_key")

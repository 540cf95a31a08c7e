"""messages: the subject key's index carries the date

Revision ID: 0027
Revises: 0026

Issue 15, item 1: conversations' subject fallback (matching/conversations.py) reads the
messages of a batch's subject keys dated within 30 days of it. On (company_id,
subject_key) alone SQLite read every message of each key at any date, half of them
outside the window, in pages not cached; with the date in the index it reads only the
window's. The new index serves every query the old one did (its leading columns).
"""

from __future__ import annotations

from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_messages_company_subject_date", "messages", ["company_id", "subject_key", "date_utc"]
    )
    op.drop_index("ix_messages_company_subject_key", table_name="messages")


def downgrade() -> None:
    op.create_index("ix_messages_company_subject_key", "messages", ["company_id", "subject_key"])
    op.drop_index("ix_messages_company_subject_date", table_name="messages")

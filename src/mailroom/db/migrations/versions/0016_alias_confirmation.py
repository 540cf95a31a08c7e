"""alias confirmation: a mailed link confirms an alias outside the company's domains

Revision ID: 0016
Revises: 0015

An alias outside the company's domains is confirmed by whoever reads its mail (issue 11,
item 1): `confirm_token_hash` is the SHA-256 of the link's random token (the token itself
is never stored), `confirm_expires_at` ends it after 7 days, `confirm_sent_at` says when
the confirmation mail was queued (NULL: not sent, e.g. the company has no notice mailbox).
A confirmed (or admin-approved) alias has no token: each token works once.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mailbox_aliases") as batch:
        batch.add_column(sa.Column("confirm_token_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("confirm_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("confirm_sent_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_mailbox_aliases_confirm_token_hash", ["confirm_token_hash"])


def downgrade() -> None:
    with op.batch_alter_table("mailbox_aliases") as batch:
        batch.drop_index("ix_mailbox_aliases_confirm_token_hash")
        batch.drop_column("confirm_sent_at")
        batch.drop_column("confirm_expires_at")
        batch.drop_column("confirm_token_hash")

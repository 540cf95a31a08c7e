"""alias approval: an alias counts as its owner's address only once approved

Revision ID: 0009
Revises: 0008

`mailbox_aliases.approved` (issue 11): an alias a member typed is pending until an admin of
the company approves it; access control counts approved aliases only. Aliases stored
before this revision were never checked, so they start pending too: an admin approves
them (`mailroom mailbox approve-alias ID ADDRESS`, or the API).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mailbox_aliases") as batch:
        batch.add_column(
            sa.Column("approved", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("mailbox_aliases") as batch:
        batch.drop_column("approved")

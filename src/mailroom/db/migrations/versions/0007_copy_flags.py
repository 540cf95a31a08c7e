"""copy flags: the IMAP flags of each message copy, as the server last reported them

Revision ID: 0007
Revises: 0006

`message_copies.flags` is a JSON list (\\Seen, \\Flagged, keywords; RFC 3501 §2.3.2), set
when the copy is fetched and kept current by later syncs (CONDSTORE, RFC 7162). Existing
rows start with an empty list, filled in when their flags next change on the server.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("message_copies") as batch:
        batch.add_column(sa.Column("flags", sa.JSON(), server_default="[]", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("message_copies") as batch:
        batch.drop_column("flags")

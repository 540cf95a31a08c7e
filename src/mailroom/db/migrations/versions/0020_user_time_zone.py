"""user time zone: the zone a user's pages show times in

Revision ID: 0020
Revises: 0019

`users.time_zone` (issue 13, item 12): an IANA zone name (`Europe/Paris`), chosen on the
account page or `PATCH /api/v1/me`; NULL until then, and the browser's own zone is saved
on the first page it shows (docs/decisions/0027-times-in-the-viewers-time-zone.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN (SQLite has it for a nullable column): a batch copy of `users`
    # would rewrite the foreign keys that other tables hold on it.
    op.add_column("users", sa.Column("time_zone", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("users", "time_zone")

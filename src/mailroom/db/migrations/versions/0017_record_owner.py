"""record owner: a record may have an owner, a user of its company

Revision ID: 0017
Revises: 0016

`records.owner_id` (issue 13, item 1): the user who owns a lead, contact, account, case or
opportunity. Deleting the user leaves the record without an owner. Stage and status stay
in `records.fields` (`stage`, `status`), where the opportunity policy already reads them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mailroom.db import index_triggers

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("records") as batch:
        batch.add_column(sa.Column("owner_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_records_owner_id_users", "users", ["owner_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_index("ix_records_owner_id", ["owner_id"])
    index_triggers.create_for(op, "records")  # SQLite's rebuild of `records` dropped them


def downgrade() -> None:
    with op.batch_alter_table("records") as batch:
        batch.drop_index("ix_records_owner_id")
        batch.drop_constraint("fk_records_owner_id_users", type_="foreignkey")
        batch.drop_column("owner_id")
    index_triggers.create_for(op, "records")

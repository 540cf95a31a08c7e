"""oauth: registered OAuth clients per provider, and each mailbox's OAuth grant

Revision ID: 0008
Revises: 0007

`oauth_clients` holds the operator's client per provider (google, microsoft): its id, its
secret encrypted like a password, and optional endpoint overrides. `mailbox_oauth` holds a
mailbox's refresh token and current access token, each encrypted with its own associated
data (security.secrets), with the access token's expiry and the granted scope.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oauth_clients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column("authorize_url", sa.String(length=2000), nullable=True),
        sa.Column("token_url", sa.String(length=2000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_clients")),
        sa.UniqueConstraint("provider", name=op.f("uq_oauth_clients_provider")),
    )
    op.create_table(
        "mailbox_oauth",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("refresh_secret", sa.LargeBinary(), nullable=False),
        sa.Column("access_secret", sa.LargeBinary(), nullable=True),
        sa.Column("access_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_mailbox_oauth_mailbox_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailbox_oauth")),
        sa.UniqueConstraint("mailbox_id", name=op.f("uq_mailbox_oauth_mailbox_id")),
    )


def downgrade() -> None:
    op.drop_table("mailbox_oauth")
    op.drop_table("oauth_clients")

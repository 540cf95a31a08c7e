"""OAuth 2.0 for Google Workspace and Microsoft 365 mailboxes (issue 12): the operator's
registered client per provider, and each mailbox's grant (its tokens).

Every secret column holds security.secrets ciphertext bound to its row and purpose:
`oauth-client:<provider>:secret` for a client secret, `mailbox:<id>:oauth-refresh` and
`mailbox:<id>:oauth-access` for a mailbox's tokens, so no secret decrypts anywhere else.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mailroom.db.models import Base, utcnow


class OAuthClient(Base):
    """The OAuth client the operator registered at a provider (one per provider).

    `authorize_url`/`token_url` are None for the provider's own endpoints, or an override
    (a national cloud, a single tenant, the test suite's local provider)."""

    __tablename__ = "oauth_clients"
    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(20), unique=True)
    client_id: Mapped[str] = mapped_column(String(255))
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    authorize_url: Mapped[str | None] = mapped_column(String(2000), default=None)
    token_url: Mapped[str | None] = mapped_column(String(2000), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class MailboxOAuth(Base):
    """A mailbox's OAuth grant: which provider, its refresh token and the current access
    token (both encrypted), when the access token expires, and the granted scope."""

    __tablename__ = "mailbox_oauth"
    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(
        ForeignKey("mailboxes.id", ondelete="CASCADE"), unique=True
    )
    provider: Mapped[str] = mapped_column(String(20))
    refresh_secret: Mapped[bytes] = mapped_column(LargeBinary)
    access_secret: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    access_expires_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), default=None
    )
    scope: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

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


class OAuthRequest(Base):
    """An admin's request that a user of the company sign a mailbox in ("transparent
    sync"): the user sees it on "My mailboxes" and completes it with their own provider
    account; the mailbox is theirs. `mailbox_id` set: a reconnect of that mailbox.
    `servers` is JSON (host, port, security, SMTP, backfill) or empty for the preset."""

    __tablename__ = "oauth_requests"
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    requested_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    provider: Mapped[str] = mapped_column(String(20))
    mailbox_id: Mapped[int | None] = mapped_column(
        ForeignKey("mailboxes.id", ondelete="CASCADE"), default=None
    )
    servers: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class OAuthPending(Base):
    """A dashboard sign-in under way, bound to the browser's web session: the digest of its
    `state`, the PKCE verifier (encrypted as `oauth-pending:<state digest>`), what it is for
    (a new mailbox with `servers`, a reconnect, an admin's request) and a short expiry.
    Taken (deleted) by the one callback that presents its state: single use."""

    __tablename__ = "oauth_pending"
    id: Mapped[int] = mapped_column(primary_key=True)
    state_digest: Mapped[str] = mapped_column(String(64), unique=True)
    web_session_id: Mapped[int] = mapped_column(
        ForeignKey("web_sessions.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(20))
    verifier: Mapped[bytes] = mapped_column(LargeBinary)
    redirect_uri: Mapped[str] = mapped_column(String(2000))
    mailbox_id: Mapped[int | None] = mapped_column(
        ForeignKey("mailboxes.id", ondelete="CASCADE"), default=None
    )
    request_id: Mapped[int | None] = mapped_column(
        ForeignKey("oauth_requests.id", ondelete="CASCADE"), default=None
    )
    servers: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

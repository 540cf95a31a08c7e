"""Models of the web dashboard and API: sessions, API tokens, sign-in attempts, privacy.

Invariants:
- a session or API token is stored only as the SHA-256 of the random value the browser or
  client holds, so a copy of the database lets nobody sign in (`token_hash` is unique);
- every company has at most one `CompanyPrivacy` row and every mailbox at most one
  `MailboxSharing` row; a missing row means the defaults (transparent, retention of
  unlinked mail off with 7 days offered, share everything), so nothing has to be created
  when a company or mailbox is (companies from before retention was off by default got a
  row with it on in migration 0018);
- `SignInAttempt` rows are the rate limiter's memory, shared by every web process.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from mailroom.db.models import Base, utcnow

VISIBILITY_MODES = ("transparent", "strict")
SHARING_LEVELS = ("everything", "subject", "metadata")
DEFAULT_RETENTION_DAYS = 7


class WebSession(Base):
    """A signed-in browser: the hash of its cookie, its CSRF token and when it expires."""

    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ApiToken(Base):
    """A personal API token; `prefix` (the first characters) is what lists show."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class SignInAttempt(Base):
    """One failed sign-in, by address and client address (rate limiting)."""

    __tablename__ = "sign_in_attempts"
    __table_args__ = (Index("ix_sign_in_attempts_email_at", "email", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    client: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CompanyPrivacy(Base):
    """Who sees which mail (transparent or strict) and how long unlinked mail is kept."""

    __tablename__ = "company_privacy"
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), unique=True
    )
    visibility: Mapped[str] = mapped_column(String(20), default="transparent")
    retention_days: Mapped[int] = mapped_column(Integer, default=DEFAULT_RETENTION_DAYS)
    retention_enabled: Mapped[bool] = mapped_column(Boolean, default=False)


class MailboxSharing(Base):
    """What the owner of a mailbox lets colleagues see of its mail (Twenty's model)."""

    __tablename__ = "mailbox_sharing"
    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(
        ForeignKey("mailboxes.id", ondelete="CASCADE"), unique=True
    )
    level: Mapped[str] = mapped_column(String(20), default="everything")

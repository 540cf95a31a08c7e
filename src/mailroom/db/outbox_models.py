"""Tables for sending (per-mailbox SMTP settings, the outbox, send attempts) and for the
company's drop address (tokens, quarantined mail).

Invariants, each backed by a key or a column the outbox service relies on:
- one `MailboxSmtp` per mailbox; its password (when it has its own) is AEAD-encrypted with
  the context `mailbox:<id>:smtp`, so it never decrypts in another row or role;
- one `OutboxEntry` per (company, Message-ID): the message bytes are stored with the entry
  and committed *before* the first attempt, so every retry sends exactly the same message;
- every attempt is an `OutboxAttempt` row committed before the connection is opened, and
  its `stage` is moved to `data` (committed) before the point of no return, so after a
  crash the service knows whether the outcome is unknown;
- one `DropToken` per company and a token is unique across companies.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from mailroom.db.models import Base, utcnow


class MailboxSmtp(Base):
    """How a mailbox sends: its SMTP server, and its own login when not the IMAP one."""

    __tablename__ = "mailbox_smtp"
    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(
        ForeignKey("mailboxes.id", ondelete="CASCADE"), unique=True
    )
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    security: Mapped[str] = mapped_column(String(10), default="starttls")
    username: Mapped[str | None] = mapped_column(String(320), default=None)
    secret: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    allow_self_signed: Mapped[bool] = mapped_column(Boolean, default=False)
    preset: Mapped[str] = mapped_column(String(40), default="custom")
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class OutboxEntry(Base):
    """One message to send: queued → sending → sent (or failed / held), with its bytes.

    `raw` holds the message as stored in the Sent folder (with Bcc); the copy on the wire
    leaves Bcc out. It is cleared once the message is logged (the blob store has it then).
    """

    __tablename__ = "outbox_entries"
    __table_args__ = (
        UniqueConstraint("company_id", "message_id"),
        Index("ix_outbox_entries_status_next", "status", "next_attempt_at"),
        Index("ix_outbox_entries_mailbox_created", "mailbox_id", "created_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"))
    message_id: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str] = mapped_column(Text, default="")
    envelope_from: Mapped[str] = mapped_column(String(320))
    recipients: Mapped[list[str]] = mapped_column(default=list)
    recipient_count: Mapped[int] = mapped_column(Integer, default=0)
    size: Mapped[int] = mapped_column(Integer, default=0)
    raw: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    record_id: Mapped[int | None] = mapped_column(
        ForeignKey("records.id", ondelete="SET NULL"), default=None
    )
    status: Mapped[str] = mapped_column(String(20), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    error_kind: Mapped[str | None] = mapped_column(String(40), default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    hint: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    stored_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), default=None
    )
    sent_folder: Mapped[str | None] = mapped_column(String(500), default=None)
    copy_note: Mapped[str | None] = mapped_column(Text, default=None)


class OutboxAttempt(Base):
    """One try at sending an entry: `stage` is how far it got, `outcome` how it ended.

    stage: connecting → data (the end of DATA may have been sent) → done.
    outcome: accepted | transient | permanent | found-in-sent | unknown (None while running).
    """

    __tablename__ = "outbox_attempts"
    __table_args__ = (UniqueConstraint("entry_id", "number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("outbox_entries.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(20), default="connecting")
    outcome: Mapped[str | None] = mapped_column(String(20), default=None)
    smtp_code: Mapped[int | None] = mapped_column(Integer, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class DropToken(Base):
    """A company's private drop address `log+<token>@<host>` and what to do with strangers.

    `unknown_senders`: `refuse` (550 at RCPT/DATA) or `quarantine` (kept, not logged).
    """

    __tablename__ = "drop_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), unique=True
    )
    token: Mapped[str] = mapped_column(String(64), unique=True)
    unknown_senders: Mapped[str] = mapped_column(String(20), default="refuse")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DropQuarantine(Base):
    """Mail to a drop address from someone who is not the company's: kept, not logged."""

    __tablename__ = "drop_quarantine"
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), index=True
    )
    envelope_from: Mapped[str] = mapped_column(String(320), default="")
    header_from: Mapped[str | None] = mapped_column(String(320), default=None)
    subject: Mapped[str] = mapped_column(Text, default="")
    size: Mapped[int] = mapped_column(Integer, default=0)
    raw_sha256: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class NoticeSender(Base):
    """The mailbox a company's notices (reconnect reminders, task reminders, alias
    confirmations) are sent from; at most one per company, chosen by an admin."""

    __tablename__ = "notice_senders"
    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True
    )
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"))


class NoticeSent(Base):
    """One notice queued, under a key that says what and for which period, so a daily
    reminder goes out once a day however many processes ask (unique per company and key)."""

    __tablename__ = "notices_sent"
    __table_args__ = (UniqueConstraint("company_id", "key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(300))
    entry_id: Mapped[int | None] = mapped_column(
        ForeignKey("outbox_entries.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

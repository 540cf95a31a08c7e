"""Tables of matching, filters and rules: settings, blocklist, rules, decisions, tombstones.

Invariants, each backed by a unique key so ingestion stays idempotent (invariant
"exactly-once effect", docs/architecture.md):
- one `MatchingSettings` row per company and one `MailboxPolicy` row per mailbox at most
  (a missing row means the defaults);
- one `MessageSkip` per message: a stored message is either skipped (with the filter or
  rule that said so, and never linked) or matched — never silently dropped ("nothing
  dropped silently");
- one `LinkTombstone` per (message, record): a link removed by hand is never re-added by
  automation;
- one `SenderCounter` per (company, sender, day): records created from one sender per day
  are counted for the auto-reply loop protection;
- rule names are unique per company, and `position` orders them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from mailroom.db.models import Base, utcnow

OPPORTUNITY_POLICIES = ("all", "recent", "none")
PARTICIPATION_POLICIES = ("known-records", "participated")
DEFAULT_CONFIDENTIAL = ["Confidential"]
DEFAULT_MAX_CREATED_PER_SENDER = 5


class MatchingSettings(Base):
    """A company's matching switches; absent row = defaults."""

    __tablename__ = "matching_settings"
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), unique=True
    )
    opportunity_policy: Mapped[str] = mapped_column(String(10), default="all")
    log_bulk: Mapped[bool] = mapped_column(Boolean, default=False)
    confidential_subjects: Mapped[list[str]] = mapped_column(
        default=lambda: list(DEFAULT_CONFIDENTIAL)
    )
    max_created_per_sender: Mapped[int] = mapped_column(
        Integer, default=DEFAULT_MAX_CREATED_PER_SENDER
    )


class MailboxPolicy(Base):
    """A mailbox's logging policy: all mail with known records, or only threads joined."""

    __tablename__ = "mailbox_policies"
    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(
        ForeignKey("mailboxes.id", ondelete="CASCADE"), unique=True
    )
    participation: Mapped[str] = mapped_column(String(20), default="known-records")
    # The record types this mailbox's mail may link to; None: every type (issue 13 item 11).
    feeds: Mapped[list[str] | None] = mapped_column(JSON, default=None)


class FeedSkip(Base):
    """A link the linker planned but the mailbox's `feeds` refused (shown by `why`)."""

    __tablename__ = "feed_skips"
    __table_args__ = (UniqueConstraint("message_id", "record_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    mailbox_id: Mapped[int | None] = mapped_column(
        ForeignKey("mailboxes.id", ondelete="SET NULL"), default=None
    )
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    feeds: Mapped[list[str]] = mapped_column(JSON, default=list)


class BlockEntry(Base):
    """An address or `@domain` whose mail is not logged, for a company or one user."""

    __tablename__ = "block_entries"
    __table_args__ = (Index("ix_block_entries_company_entry", "company_id", "entry"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), default=None
    )
    entry: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MatchRule(Base):
    """A stored rule: conditions (a JSON object) and one action with its parameters."""

    __tablename__ = "match_rules"
    __table_args__ = (UniqueConstraint("company_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(60))
    position: Mapped[int] = mapped_column(Integer, default=0)
    description: Mapped[str] = mapped_column(Text, default="")
    conditions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    action: Mapped[str] = mapped_column(String(30))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MessageSkip(Base):
    """Why a stored message is not logged: `filter:NAME` or `rule:NAME`, with detail."""

    __tablename__ = "message_skips"
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), unique=True
    )
    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), index=True
    )
    skipped_by: Mapped[str] = mapped_column(String(80))
    detail: Mapped[str] = mapped_column(Text, default="")
    mailbox_id: Mapped[int | None] = mapped_column(
        ForeignKey("mailboxes.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RuleOutcome(Base):
    """What a rule did to a message (created lead:12, deduplicated, loop protection, …)."""

    __tablename__ = "rule_outcomes"
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    rule: Mapped[str] = mapped_column(String(60))
    outcome: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LinkTombstone(Base):
    """A link removed by hand: automation never re-adds it."""

    __tablename__ = "link_tombstones"
    __table_args__ = (UniqueConstraint("message_id", "record_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    removed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SenderCounter(Base):
    """Records created from one sender on one UTC day (auto-reply loop protection)."""

    __tablename__ = "sender_counters"
    __table_args__ = (UniqueConstraint("company_id", "address", "day"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(String(320))
    day: Mapped[str] = mapped_column(String(10))
    created: Mapped[int] = mapped_column(Integer, default=0)


class RecordIndexChange(Base):
    """One change to what matching looks up: an address or domain added or removed, or a
    record's type or account changed. Written by database triggers (migration 0012) on
    `record_emails`, `record_domains` and `records`, so every writer — the ORM, a bulk
    statement, another process — is seen; the in-memory index (matching.address_index)
    catches up from the last id it applied, and on PostgreSQL also re-reads the rows of
    transactions that were still in progress when it last read (`xact`, migration 0024).
    `key` is the address (kind "a"), the domain ("d"), or empty with `record_id` for a
    record-level change ("r") or for the parent whose opportunities changed ("o"). No
    foreign key: the rows of a company being deleted are still written while its cascade
    runs."""

    __tablename__ = "record_index_changes"
    __table_args__ = (
        Index("ix_record_index_changes_company_id", "company_id", "id"),
        Index("ix_record_index_changes_xact", "company_id", "xact"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(1))
    key: Mapped[str] = mapped_column(String(320), default="")
    record_id: Mapped[int | None] = mapped_column(Integer, default=None)
    # PostgreSQL: the writing transaction's id (server default, migration 0024); SQLite: NULL.
    xact: Mapped[int | None] = mapped_column(BigInteger)

"""The SQLAlchemy models: tenants, people, CRM records, mailboxes, messages and links.

Invariants enforced by unique keys ("exactly-once effect" and "one row per message" in
docs/architecture.md), so re-ingesting anything is a no-op:
- one `Message` per (company, identity) however many mailboxes or folders saw it;
- one `MessageCopy` per (mailbox, folder, UIDVALIDITY, UID) — each place it was seen;
- one `MessageLink` per (message, record).
Every row that belongs to a tenant carries `company_id`, so every query can be scoped.
Addresses are stored normalised (mail.addresses.normalise) so matching is an index lookup.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql import false, true

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

RECORD_TYPES = ("lead", "contact", "account", "case", "opportunity")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base with stable constraint names, so migrations can refer to them."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[str]: JSON}


class Company(Base):
    """A tenant: everything else belongs to exactly one company."""

    __tablename__ = "companies"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    mailbox_limit: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    domains: Mapped[list[CompanyDomain]] = relationship(
        back_populates="company", cascade="all, delete-orphan", lazy="selectin"
    )


class CompanyDomain(Base):
    """A domain the company's own mail comes from (internal, never linked)."""

    __tablename__ = "company_domains"
    __table_args__ = (UniqueConstraint("company_id", "domain"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    domain: Mapped[str] = mapped_column(String(255))
    company: Mapped[Company] = relationship(back_populates="domains")


class User(Base):
    """A person who signs in: admin or member of one company."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20), default="member")
    password_hash: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The IANA zone the user's pages show times in (issue 13); None until the user or
    # their browser says (pages show UTC meanwhile).
    time_zone: Mapped[str | None] = mapped_column(String(64), default=None)
    # Appended below what the user writes, after "-- " (outbox.quoting); "" for none.
    signature: Mapped[str] = mapped_column(Text, default="", server_default="")


class Record(Base):
    """A CRM record of any type (lead, contact, account, case, opportunity).

    One table for all types keeps the address index single; type-specific values
    (phone, title, custom columns) live in `fields`. Contacts (and others) may belong to an
    account through `account_id`.
    """

    __tablename__ = "records"
    __table_args__ = (Index("ix_records_company_type", "company_id", "type"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(300), default="")
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("records.id", ondelete="SET NULL"), default=None, index=True
    )
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The user who owns the record (issue 13); None when nobody does or the user was deleted.
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None, index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
    emails: Mapped[list[RecordEmail]] = relationship(
        back_populates="record",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="RecordEmail.id",
    )
    domains: Mapped[list[RecordDomain]] = relationship(
        back_populates="record", cascade="all, delete-orphan", lazy="selectin"
    )
    owner: Mapped[User | None] = relationship(lazy="selectin")

    @property
    def ref(self) -> str:
        return f"{self.type}:{self.id}"


class RecordEmail(Base):
    """One email address of a record, under a field name (main, secondary, any custom)."""

    __tablename__ = "record_emails"
    __table_args__ = (
        UniqueConstraint("record_id", "address"),
        Index("ix_record_emails_company_address", "company_id", "address"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    field: Mapped[str] = mapped_column(String(100), default="main")
    address: Mapped[str] = mapped_column(String(320))
    record: Mapped[Record] = relationship(back_populates="emails")


class RecordDomain(Base):
    """A web/mail domain an account holds."""

    __tablename__ = "record_domains"
    __table_args__ = (
        UniqueConstraint("record_id", "domain"),
        Index("ix_record_domains_company_domain", "company_id", "domain"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    domain: Mapped[str] = mapped_column(String(255))
    record: Mapped[Record] = relationship(back_populates="domains")


class Mailbox(Base):
    """A connected mailbox; `secret` is the AEAD-encrypted password, never clear text."""

    __tablename__ = "mailboxes"
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    address: Mapped[str] = mapped_column(String(320))
    protocol: Mapped[str] = mapped_column(String(10), default="imap")
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    security: Mapped[str] = mapped_column(String(10), default="ssl")
    username: Mapped[str] = mapped_column(String(320))
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    allow_self_signed: Mapped[bool] = mapped_column(Boolean, default=False)
    folders: Mapped[list[str]] = mapped_column(default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Sync engine (sync/health.py, sync/engine.py): backfill window, health and the claim.
    since_date: Mapped[date | None] = mapped_column(Date, default=None)
    delete_after_fetch: Mapped[bool] = mapped_column(Boolean, default=False)
    error_kind: Mapped[str | None] = mapped_column(String(40), default=None)
    error_hint: Mapped[str | None] = mapped_column(Text, default=None)
    failure_count: Mapped[int] = mapped_column(Integer, default=0)
    auth_failure_count: Mapped[int] = mapped_column(Integer, default=0)
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    sync_requested_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), default=None
    )
    sync_owner: Mapped[str | None] = mapped_column(String(200), default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    progress_done: Mapped[int] = mapped_column(BigInteger, default=0)
    progress_total: Mapped[int] = mapped_column(BigInteger, default=0)
    progress_done_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    progress_total_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    aliases: Mapped[list[MailboxAlias]] = relationship(
        back_populates="mailbox", cascade="all, delete-orphan", lazy="selectin"
    )


class MailboxAlias(Base):
    """Another address the mailbox's owner sends as (internal to the matching).

    It counts as the owner's own address (access control, matching) only once `approved`
    (issue 11): by an admin of the company, or, outside the company's domains, by the
    confirmation link mailed to it. Until then a member could claim a colleague's.
    """

    __tablename__ = "mailbox_aliases"
    __table_args__ = (UniqueConstraint("mailbox_id", "address"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(String(320))
    approved: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # An alias outside the company's domains is confirmed by a mailed link (migration 0016,
    # services/aliases.py): the SHA-256 of its token, when it ends, when it was queued.
    confirm_token_hash: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    confirm_expires_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), default=None
    )
    confirm_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    mailbox: Mapped[Mailbox] = relationship(back_populates="aliases")


class FolderState(Base):
    """Per-folder sync state: the stage and both cursors (see sync/engine.py's docstring).

    `last_uid` is the forward cursor (every UID <= it is stored or is backfill's to fetch);
    `backfill_below` the backward one (UIDs below it are still to fetch, newest first;
    NULL when nothing is left). Both move only in the transaction that stores their batch.
    """

    __tablename__ = "folder_states"
    __table_args__ = (UniqueConstraint("mailbox_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(500))
    role: Mapped[str] = mapped_column(String(20), default="other")
    stage: Mapped[str] = mapped_column(String(20), default="new")
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger, default=None)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    uidnext: Mapped[int | None] = mapped_column(BigInteger, default=None)
    highestmodseq: Mapped[int | None] = mapped_column(BigInteger, default=None)
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    messages: Mapped[int | None] = mapped_column(BigInteger, default=None)
    backfill_below: Mapped[int | None] = mapped_column(BigInteger, default=None)
    total_messages: Mapped[int] = mapped_column(BigInteger, default=0)
    total_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    done_messages: Mapped[int] = mapped_column(BigInteger, default=0)
    done_bytes: Mapped[int] = mapped_column(BigInteger, default=0)


class MailboxError(Base):
    """One entry of a mailbox's error log: what happened and how to fix it."""

    __tablename__ = "mailbox_errors"
    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(
        ForeignKey("mailboxes.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    kind: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)
    hint: Mapped[str | None] = mapped_column(Text, default=None)
    user_fixable: Mapped[bool] = mapped_column(Boolean, default=False)
    retry_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class QuarantinedMessage(Base):
    """A listed message the sync could not fetch: retried, then quarantined, never skipped.

    One row per (mailbox, folder, UIDVALIDITY, UID), like a copy: a message the server
    listed whose FETCH (POP3: RETR) answer was missing or could not be read. `state`:
    `retrying` (the next sync fetches it again; a folder cursor never passes it),
    `quarantined` (given up after a few attempts, the cursor may pass it; the person can
    retry it), `dismissed` (the person accepted the loss). The row is deleted when the
    message is stored, and with its folder's other rows when the UIDVALIDITY changes
    (sync/quarantine.py). POP3 rows carry the UIDL in `server_id` (uid: its hash).
    """

    __tablename__ = "quarantined_messages"
    __table_args__ = (UniqueConstraint("mailbox_id", "folder", "uidvalidity", "uid"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"))
    folder: Mapped[str] = mapped_column(String(500))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[int] = mapped_column(BigInteger)
    server_id: Mapped[str | None] = mapped_column(String(200), default=None)
    size: Mapped[int | None] = mapped_column(BigInteger, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(20), default="retrying")
    first_error_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_error_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_error: Mapped[str] = mapped_column(Text, default="")


class Message(Base):
    """One email, stored once per company, however many places it was seen."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("company_id", "identity"),
        Index("ix_messages_company_date", "company_id", "date_utc"),
        Index("ix_messages_company_subject_date", "company_id", "subject_key", "date_utc"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    identity: Mapped[str] = mapped_column(String(500))
    message_id: Mapped[str] = mapped_column(String(500))
    message_id_generated: Mapped[bool] = mapped_column(Boolean, default=False)
    date_utc: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    date_text: Mapped[str | None] = mapped_column(String(40), default=None)
    subject: Mapped[str] = mapped_column(Text, default="")
    from_address: Mapped[str | None] = mapped_column(String(320), default=None)
    from_name: Mapped[str] = mapped_column(String(300), default="")
    to_addresses: Mapped[list[str]] = mapped_column(default=list)
    cc_addresses: Mapped[list[str]] = mapped_column(default=list)
    bcc_addresses: Mapped[list[str]] = mapped_column(default=list)
    reply_to_addresses: Mapped[list[str]] = mapped_column(default=list)
    in_reply_to: Mapped[str | None] = mapped_column(String(500), default=None)
    references: Mapped[list[str]] = mapped_column(default=list)
    direction: Mapped[str] = mapped_column(String(10), default="inbound")
    text_body: Mapped[str] = mapped_column(Text, default="")
    html_body: Mapped[str] = mapped_column(Text, default="")
    size: Mapped[int] = mapped_column(Integer, default=0)
    raw_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    # `<pack>:<offset>:<size>` when the raw bytes are in a pack file (mail.packs), None
    # when they are the loose blob `raw_sha256`: read them with BlobStore.read_raw.
    raw_location: Mapped[str | None] = mapped_column(String(100), default=None)
    parse_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # False while only the headers are stored: text, HTML and attachments are still in the
    # raw blob and ingest.bodies.ensure_bodies fills them (on first read or in the background).
    bodies_parsed: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # The subject without Re:/Fwd:… (mail.threads.subject_key), for the conversation
    # fallback of mail without References; None on rows stored before it existed.
    subject_key: Mapped[str | None] = mapped_column(String(300), default=None)
    # False on rows stored before conversations existed, until matching.conversations'
    # backfill has put them in one (a node for the id alone does not say that: a reply
    # naming this message makes one).
    threaded: Mapped[bool] = mapped_column(
        Boolean, default=True, server_default=false(), index=True
    )


class Conversation(Base):
    """One conversation of a company: the label the union-find below gives its messages."""

    __tablename__ = "conversations"
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), index=True
    )


class ConversationNode(Base):
    """A message id (a stored message's identity, or one named by References/In-Reply-To,
    stored or not) and the conversation it belongs to. A message joining two conversations
    relabels the nodes of one to the other (matching.conversations)."""

    __tablename__ = "conversation_nodes"
    __table_args__ = (UniqueConstraint("company_id", "identity"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    identity: Mapped[str] = mapped_column(String(500))
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )


class MessageAddress(Base):
    """A participant of a message, by role: the index retro-linking searches."""

    __tablename__ = "message_addresses"
    __table_args__ = (
        UniqueConstraint("message_id", "role", "address"),
        Index("ix_message_addresses_company_address", "company_id", "address"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(10))
    address: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(300), default="")


class Attachment(Base):
    """An attachment's metadata; its bytes are in the content-addressed blob store."""

    __tablename__ = "attachments"
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(500))
    content_type: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))


class MessageCopy(Base):
    """One place a message was seen: (mailbox, folder, UIDVALIDITY, UID)."""

    __tablename__ = "message_copies"
    __table_args__ = (
        UniqueConstraint("mailbox_id", "folder", "uidvalidity", "uid"),
        Index("ix_message_copies_message", "message_id"),
        Index("ix_message_copies_server_id", "mailbox_id", "server_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"))
    folder: Mapped[str] = mapped_column(String(500))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[int] = mapped_column(BigInteger)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    gone_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # POP3 has no UIDs: its UIDL string lives here and `uid` is a hash of it (sync/pop3.py).
    server_id: Mapped[str | None] = mapped_column(String(200), default=None)
    # The IMAP flags as the server last reported them (\\Seen, \\Flagged, keywords;
    # RFC 3501 §2.3.2), kept current by the sync (CONDSTORE, RFC 7162); never written back.
    flags: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    # Gmail's labels of the copy (X-GM-LABELS: \\Inbox, \\Sent, the user's own), as last
    # reported (sync/gmail.py); its X-GM-MSGID is `server_id`. Empty for other servers.
    labels: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")


class MessageLink(Base):
    """A message shown on a record's timeline, with the reason it was linked."""

    __tablename__ = "message_links"
    __table_args__ = (
        UniqueConstraint("message_id", "record_id"),
        # A record's timeline in order, any page by keyset (crm.access; migration 0022).
        Index("ix_message_links_record_date", "record_id", "message_date", "message_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The message's date_utc, copied by database triggers on insert (and when the message's
    # date changes), never written by the application: the timeline's sort key.
    message_date: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True, server_default=None
    )

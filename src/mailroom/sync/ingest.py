"""Ingest a batch of fetched messages: parse, store once per company, record the copy, link.

Idempotent by construction (DESIGN.md #2, #3): a message is looked up by its identity
(the Message-ID, or a fingerprint when it has none) before it is stored, a copy by
(mailbox, folder, UIDVALIDITY, UID), a link by (message, record) — and unique keys back
each lookup. Ingesting the same batch twice changes nothing. A message that cannot be
parsed is stored all the same, raw, with its error (DESIGN.md #4).

The caller owns the transaction: the whole batch commits, then the cursor moves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from mailroom.connectors.base import RawMessage
from mailroom.db.models import Attachment, Message, MessageAddress, MessageCopy
from mailroom.mail.blobs import BlobStore
from mailroom.mail.message import ParsedMessage
from mailroom.mail.parse import parse_message
from mailroom.matching.directory import CompanyDirectory
from mailroom.matching.linker import link_messages
from mailroom.sync.classify import classify_direction, external_addresses

MAX_ID = 400


@dataclass(frozen=True, slots=True)
class IngestTarget:
    """Where a batch goes: the company, the mailbox it came from, the internal directory."""

    company_id: int
    mailbox_id: int
    directory: CompanyDirectory
    blobs: BlobStore


@dataclass(slots=True)
class BatchResult:
    """What one batch added."""

    messages: int = 0
    copies: int = 0
    links: int = 0
    parse_errors: int = 0
    bytes: int = 0
    new_message_ids: list[int] = field(default_factory=list)


def ingest_batch(session: Session, target: IngestTarget, raws: Sequence[RawMessage]) -> BatchResult:
    result = BatchResult()
    if not raws:
        return result
    parsed = [(raw, parse_message(raw.data)) for raw in raws]
    identities = list({identity_of(p) for _, p in parsed})
    known = _known_messages(session, target.company_id, identities)
    externals: dict[int, list[str]] = {}
    ids_by_identity: dict[str, int] = dict(known)
    for raw, message in parsed:
        result.bytes += raw.size
        if identity_of(message) in ids_by_identity:
            continue
        row = _store_message(session, target, raw, message)
        ids_by_identity[row.identity] = row.id
        result.messages += 1
        result.new_message_ids.append(row.id)
        if message.parse_error:
            result.parse_errors += 1
        if row.direction != "internal":
            externals[row.id] = external_addresses(message, target.directory)
    result.copies = _store_copies(session, target, parsed, ids_by_identity)
    if externals:
        result.links = link_messages(session, company_id=target.company_id, externals=externals)
    return result


def clean_text(value: str) -> str:
    """Text every database accepts: no NUL (PostgreSQL refuses it), no lone surrogates."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def identity_of(parsed: ParsedMessage) -> str:
    """The dedup key: the Message-ID, hashed when too long for an indexed column."""
    value = clean_text(parsed.message_id)
    if len(value) > MAX_ID:
        return "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()
    return value


def _known_messages(session: Session, company_id: int, identities: list[str]) -> dict[str, int]:
    rows = session.execute(
        select(Message.identity, Message.id).where(
            Message.company_id == company_id, Message.identity.in_(identities)
        )
    )
    return {identity: mid for identity, mid in rows}


def _store_message(
    session: Session, target: IngestTarget, raw: RawMessage, parsed: ParsedMessage
) -> Message:
    date_utc = parsed.date.astimezone(UTC) if parsed.date else None
    row = Message(
        company_id=target.company_id,
        identity=identity_of(parsed),
        message_id=clean_text(parsed.message_id)[:500],
        message_id_generated=parsed.message_id_generated,
        date_utc=date_utc,
        date_text=parsed.date.isoformat() if parsed.date else None,
        subject=clean_text(parsed.subject),
        from_address=parsed.from_address,
        from_name=clean_text(parsed.from_[0].name[:300]) if parsed.from_ else "",
        to_addresses=[a.address for a in parsed.to],
        cc_addresses=[a.address for a in parsed.cc],
        bcc_addresses=[a.address for a in parsed.bcc],
        reply_to_addresses=[a.address for a in parsed.reply_to],
        in_reply_to=clean_text(parsed.in_reply_to)[:500] if parsed.in_reply_to else None,
        references=list(parsed.references),
        direction=classify_direction(parsed, target.directory),
        text_body=clean_text(parsed.text),
        html_body=clean_text(parsed.html),
        size=raw.size,
        raw_sha256=target.blobs.put(raw.data),
        parse_error=clean_text(parsed.parse_error) if parsed.parse_error else None,
    )
    session.add(row)
    session.flush()
    seen: set[tuple[str, str]] = set()
    for role, addr in parsed.participants():
        if (role, addr.address) in seen:
            continue
        seen.add((role, addr.address))
        session.add(
            MessageAddress(
                message_id=row.id,
                company_id=target.company_id,
                role=role,
                address=addr.address,
                name=clean_text(addr.name[:300]),
            )
        )
    for att in parsed.attachments:
        session.add(
            Attachment(
                message_id=row.id,
                filename=clean_text(att.filename[:500]),
                content_type=clean_text(att.content_type[:200]),
                size=att.size,
                sha256=target.blobs.put(att.data),
            )
        )
    return row


def _store_copies(
    session: Session,
    target: IngestTarget,
    parsed: Sequence[tuple[RawMessage, ParsedMessage]],
    ids_by_identity: dict[str, int],
) -> int:
    places = {(raw.folder, raw.uidvalidity, raw.uid): identity_of(msg) for raw, msg in parsed}
    keys = list(places)
    existing = set(
        session.execute(
            select(MessageCopy.folder, MessageCopy.uidvalidity, MessageCopy.uid).where(
                MessageCopy.mailbox_id == target.mailbox_id,
                tuple_(MessageCopy.folder, MessageCopy.uidvalidity, MessageCopy.uid).in_(keys),
            )
        ).all()
    )
    created = 0
    for key, identity in places.items():
        if key in existing:
            continue
        folder, uidvalidity, uid = key
        session.add(
            MessageCopy(
                message_id=ids_by_identity[identity],
                mailbox_id=target.mailbox_id,
                folder=folder,
                uidvalidity=uidvalidity,
                uid=uid,
            )
        )
        created += 1
    session.flush()
    return created

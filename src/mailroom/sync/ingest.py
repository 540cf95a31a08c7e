"""Ingest a batch of fetched messages: parse → classify → filters/rules → store → link.

Per message, in the batch's order (so a reply follows a case made by its parent's rule):

    parse_message          bytes → ParsedMessage (never raises)
    classify               direction (internal / outbound / inbound), automatic mail?
    matching.filters       the filter chain, then ignore rules → skipped by what, or not
    store                  one Message per company identity (+ the copy, below)
      skipped?             metadata only (ids, date, addresses) + `MessageSkip` saying why;
                           no body, attachments or raw bytes; never linked
    matching.linker        links with reasons (address, domain, thread, case-ref)
    matching.actions       the matched rules' actions (create, extract, owner, tag)

Idempotent by construction (DESIGN.md #2, #3): a message is looked up by its identity
(the Message-ID, or a fingerprint when it has none) before it is stored, a copy by
(mailbox, folder, UIDVALIDITY, UID), a link by (message, record) — and unique keys back
each lookup. Ingesting the same batch twice changes nothing. A message that cannot be
parsed is stored all the same, raw, with its error (DESIGN.md #4); so is every skipped
one, with the filter or rule that skipped it, so nothing is dropped silently.

A message skipped by a mailbox-dependent filter (`participation`, `blocklist`) and seen
again through another mailbox is decided again under that mailbox's policy, and stored in
full and linked if that policy logs it.

The caller owns the transaction: the whole batch commits, then the cursor moves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC

from sqlalchemy import delete, select, tuple_
from sqlalchemy.orm import Session

from mailroom.connectors.base import RawMessage
from mailroom.db.matching_models import MessageSkip
from mailroom.db.models import Attachment, Message, MessageAddress, MessageCopy
from mailroom.mail.blobs import BlobStore
from mailroom.mail.message import ParsedMessage
from mailroom.mail.parse import parse_message
from mailroom.matching.actions import apply_actions
from mailroom.matching.directory import CompanyDirectory
from mailroom.matching.filters import Decision, decide
from mailroom.matching.linker import MatchInput, apply_links, clean_text, identity_for, plan_links
from mailroom.matching.policy import Policy, load_policy
from mailroom.matching.view import MailView
from mailroom.sync.classify import automation_reason, classify_direction, external_participants

__all__ = ["BatchResult", "IngestTarget", "clean_text", "identity_of", "ingest_batch"]

MAILBOX_DEPENDENT = ("filter:participation", "filter:blocklist")


@dataclass(frozen=True, slots=True)
class IngestTarget:
    """Where a batch goes: the company, the mailbox it came from, the internal directory.

    `policy` may be preloaded by the caller; when None it is loaded once per batch."""

    company_id: int
    mailbox_id: int
    directory: CompanyDirectory
    blobs: BlobStore
    policy: Policy | None = None


@dataclass(slots=True)
class BatchResult:
    """What one batch added."""

    messages: int = 0
    copies: int = 0
    links: int = 0
    parse_errors: int = 0
    bytes: int = 0
    new_message_ids: list[int] = field(default_factory=list)
    skipped: int = 0
    records_created: int = 0


def identity_of(parsed: ParsedMessage) -> str:
    """The dedup key: the Message-ID, hashed when too long for an indexed column."""
    return identity_for(parsed.message_id)


def ingest_batch(session: Session, target: IngestTarget, raws: Sequence[RawMessage]) -> BatchResult:
    result = BatchResult()
    if not raws:
        return result
    policy = target.policy or load_policy(
        session, company_id=target.company_id, mailbox_id=target.mailbox_id
    )
    parsed = [(raw, parse_message(raw.data)) for raw in raws]
    identities = list({identity_of(p) for _, p in parsed})
    ids_by_identity = _known_messages(session, target.company_id, identities)
    revisit = _mailbox_dependent_skips(session, target, list(ids_by_identity.values()))
    for raw, message in parsed:
        result.bytes += raw.size
        identity = identity_of(message)
        known = ids_by_identity.get(identity)
        if known is not None and known not in revisit:
            continue
        direction = classify_direction(message, target.directory)
        mail = _view(message, direction, policy)
        decision = decide(session, mail, policy)
        if known is not None:
            revisit.discard(known)
            if decision.skipped_by is None:
                _revive(session, target, raw, message, known, mail, decision, policy, result)
            continue
        row = _store_message(session, target, raw, message, direction, decision)
        ids_by_identity[identity] = row.id
        result.messages += 1
        result.new_message_ids.append(row.id)
        if message.parse_error:
            result.parse_errors += 1
        if decision.skipped_by is not None:
            result.skipped += 1
            continue
        _match(session, target, row, mail, decision, policy, result)
    result.copies = _store_copies(session, target, parsed, ids_by_identity)
    return result


def _view(message: ParsedMessage, direction: str, policy: Policy) -> MailView:
    return MailView(
        parsed=message,
        direction=direction,
        mailbox_id=policy.mailbox_id,
        mailbox_address=policy.mailbox_address,
        own_addresses=policy.own_addresses,
        automated=automation_reason(message),
    )


def _match(
    session: Session,
    target: IngestTarget,
    row: Message,
    mail: MailView,
    decision: Decision,
    policy: Policy,
    result: BatchResult,
) -> None:
    item = MatchInput(
        message_id=row.id,
        identity=row.identity,
        participants=external_participants(mail.parsed, target.directory),
        subject=row.subject,
        in_reply_to=row.in_reply_to,
        references=tuple(row.references),
    )
    plans = plan_links(
        session,
        company_id=target.company_id,
        inputs=[item],
        opportunity_policy=policy.opportunity_policy,
    )
    result.links += len(apply_links(session, company_id=target.company_id, plans=plans))
    if decision.actions:
        result.records_created += apply_actions(
            session,
            message=row,
            mail=mail,
            rules=decision.actions,
            policy=policy,
            directory=target.directory,
        )


def _known_messages(session: Session, company_id: int, identities: list[str]) -> dict[str, int]:
    rows = session.execute(
        select(Message.identity, Message.id).where(
            Message.company_id == company_id, Message.identity.in_(identities)
        )
    )
    return {identity: mid for identity, mid in rows}


def _mailbox_dependent_skips(
    session: Session, target: IngestTarget, message_ids: list[int]
) -> set[int]:
    """Known messages skipped by another mailbox's policy: decide them again here."""
    if not message_ids:
        return set()
    return set(
        session.scalars(
            select(MessageSkip.message_id).where(
                MessageSkip.message_id.in_(message_ids),
                MessageSkip.skipped_by.in_(MAILBOX_DEPENDENT),
                MessageSkip.mailbox_id.is_not(None),
                MessageSkip.mailbox_id != target.mailbox_id,
            )
        )
    )


def _revive(
    session: Session,
    target: IngestTarget,
    raw: RawMessage,
    parsed: ParsedMessage,
    message_id: int,
    mail: MailView,
    decision: Decision,
    policy: Policy,
    result: BatchResult,
) -> None:
    """A message another mailbox skipped, which this mailbox logs: store it fully, link."""
    row = session.get(Message, message_id)
    if row is None:  # pragma: no cover - the id was just read in this transaction
        return
    session.execute(delete(MessageSkip).where(MessageSkip.message_id == message_id))
    row.subject = clean_text(parsed.subject)
    _fill_content(session, target, raw, parsed, row)
    _match(session, target, row, mail, decision, policy, result)


def _store_message(
    session: Session,
    target: IngestTarget,
    raw: RawMessage,
    parsed: ParsedMessage,
    direction: str | None = None,
    decision: Decision | None = None,
) -> Message:
    """Store one message row: in full, or (skipped) metadata plus the `MessageSkip`."""
    if direction is None:
        direction = classify_direction(parsed, target.directory)
    if decision is None:
        decision = Decision()
    date_utc = parsed.date.astimezone(UTC) if parsed.date else None
    skipped = decision.skipped_by is not None
    row = Message(
        company_id=target.company_id,
        identity=identity_of(parsed),
        message_id=clean_text(parsed.message_id)[:500],
        message_id_generated=parsed.message_id_generated,
        date_utc=date_utc,
        date_text=parsed.date.isoformat() if parsed.date else None,
        # A confidential subject is itself not kept.
        subject="" if decision.skipped_by == "filter:confidential" else clean_text(parsed.subject),
        from_address=parsed.from_address,
        from_name=clean_text(parsed.from_[0].name[:300]) if parsed.from_ else "",
        to_addresses=[a.address for a in parsed.to],
        cc_addresses=[a.address for a in parsed.cc],
        bcc_addresses=[a.address for a in parsed.bcc],
        reply_to_addresses=[a.address for a in parsed.reply_to],
        in_reply_to=clean_text(parsed.in_reply_to)[:500] if parsed.in_reply_to else None,
        references=list(parsed.references),
        direction=direction,
        text_body="",
        html_body="",
        size=raw.size,
        raw_sha256=target.blobs.put(raw.data) if parsed.parse_error else None,
        parse_error=clean_text(parsed.parse_error) if parsed.parse_error else None,
    )
    session.add(row)
    session.flush()
    if skipped:
        session.add(
            MessageSkip(
                message_id=row.id,
                company_id=target.company_id,
                skipped_by=str(decision.skipped_by),
                detail=clean_text(decision.detail)[:1000],
                mailbox_id=target.mailbox_id,
            )
        )
        session.flush()
        return row
    _fill_content(session, target, raw, parsed, row)
    return row


def _fill_content(
    session: Session, target: IngestTarget, raw: RawMessage, parsed: ParsedMessage, row: Message
) -> None:
    """Body, raw bytes, participants and attachments: what only logged mail keeps."""
    row.text_body = clean_text(parsed.text)
    row.html_body = clean_text(parsed.html)
    row.raw_sha256 = target.blobs.put(raw.data)
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
    session.flush()


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

"""Ingest a batch of fetched messages: parse → classify → filters/rules → store → link.

Per message, in the batch's order (so a reply follows a case made by its parent's rule):

    parse                  bytes → ParsedMessage (never raises): complete, or headers only
    classify               direction (internal / outbound / inbound), automatic mail?
    matching.filters       the filter chain, then ignore rules → skipped by what, or not
    store (in bulk)        one Message per company identity (+ the copy, below)
      skipped?             metadata only (ids, date, addresses) + `MessageSkip` saying why;
                           no body, attachments or raw bytes; never linked
    matching.linker        links with reasons (address, domain, thread, case-ref)
    ingest.actions         the matched rules' actions (create, extract, owner, tag)

Idempotent by construction (invariants "exactly-once effect" and "one row per message",
docs/architecture.md): a message is looked up by its identity
(the Message-ID, or a fingerprint when it has none) before it is stored, a copy by
(mailbox, folder, UIDVALIDITY, UID), a link by (message, record) — and unique keys back
each lookup. Ingesting the same batch twice changes nothing. A message that cannot be
parsed is stored all the same, raw, with its error (invariant "nothing dropped
silently"); so is every skipped
one, with the filter or rule that skipped it, so nothing is dropped silently.

A message skipped by a mailbox-dependent filter (`participation`, `blocklist`) and seen
again through another mailbox is decided again under that mailbox's policy, and stored in
full and linked if that policy logs it.

Fast path (`IngestTarget.defer_bodies`, what the sync engine uses): messages are parsed
from their headers only (mail.parse.parse_headers, several times faster than the complete
parse) and stored with their raw bytes and `bodies_parsed = False`; text, HTML and
attachments are parsed on first read or in the background (ingest.bodies). A rule whose
conditions need the body, an attachment or a structured header makes the complete parse of
that one message, whose bodies are then stored at once. Rows are written in bulk per
segment (ingest.store), never flushed one by one.

A message with no mailbox copy (`mailbox_id` None: drop-box mail, a send whose provider
keeps its own Sent copy) is ingested under the no-mailbox policy and no copy row is kept.

The caller owns the transaction: the whole batch commits, then the cursor moves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import cast

from sqlalchemy import Table, delete, insert, select
from sqlalchemy.orm import Session

from mailroom.connectors.base import RawMessage
from mailroom.db.bulk import insert_rows
from mailroom.db.matching_models import MessageSkip
from mailroom.db.models import Attachment, Message, MessageAddress, MessageCopy
from mailroom.ingest.counts import IngestCounts
from mailroom.ingest.store import Item, Segment, content_rows, store_raw
from mailroom.mail.blobs import BlobStore
from mailroom.mail.message import ParsedMessage
from mailroom.mail.parse import parse_headers, parse_message
from mailroom.matching.classify import automation_reason, classify_direction
from mailroom.matching.directory import CompanyDirectory
from mailroom.matching.filters import decide
from mailroom.matching.linker import clean_text, identity_for
from mailroom.matching.policy import Policy, load_policy
from mailroom.matching.view import MailView

__all__ = ["BatchResult", "IngestTarget", "clean_text", "identity_of", "ingest_batch"]

SENT_LABEL = "\\Sent"  # Gmail's X-GM-LABELS for mail the account sent (sync/gmail.py)
MAILBOX_DEPENDENT = ("filter:participation", "filter:blocklist")


@dataclass(frozen=True, slots=True)
class IngestTarget:
    """Where a batch goes: the company, the mailbox it came from, the internal directory.

    `mailbox_id` None: mail that came by no mailbox (no copy row is stored). `policy` may be
    preloaded by the caller; when None it is loaded once per batch. `defer_bodies`: store
    headers and raw bytes only, and parse bodies later (see the module doc)."""

    company_id: int
    mailbox_id: int | None
    directory: CompanyDirectory
    blobs: BlobStore
    policy: Policy | None = None
    defer_bodies: bool = False


@dataclass(slots=True, kw_only=True)
class BatchResult(IngestCounts):
    """What one batch added."""

    bytes: int = 0
    skipped: int = 0
    records_created: int = 0

    def count_new(self, message: ParsedMessage, *, skipped: bool) -> None:
        """Count one new message (and whether it failed to parse, or was skipped)."""
        self.messages += 1
        self.parse_errors += bool(message.parse_error)
        self.skipped += skipped


def identity_of(parsed: ParsedMessage) -> str:
    """The dedup key: the Message-ID, hashed when too long for an indexed column."""
    return identity_for(parsed.message_id)


def ingest_batch(
    session: Session,
    target: IngestTarget,
    raws: Sequence[RawMessage],
    parses: Sequence[ParsedMessage] | None = None,
) -> BatchResult:
    """Ingest `raws` in the caller's transaction; every blob it names is on disk at return.

    `parses`: the fetch worker's header parses of `raws` (sync/fetch_worker.py; fast path
    only), whose staged bytes the batch adopts instead of hashing and writing them here."""
    if not raws:
        return BatchResult()
    with target.blobs.batch() as blobs:  # hashes and writes overlap the rest (mail/blobs.py)
        blobs.adopt(
            (r.staged.sha256, r.staged.path, r.staged.offset, r.staged.size)
            for r in raws
            if r.staged is not None
        )
        blobs.prehash([raw.data for raw in raws if raw.staged is None])
        if parses is None or not target.defer_bodies:
            parse = parse_headers if target.defer_bodies else parse_message
            parses = [parse(raw.load()) for raw in raws]
        parsed = list(zip(raws, parses, strict=True))
        return _ingest(session, replace(target, blobs=blobs), parsed)


def _ingest(
    session: Session, target: IngestTarget, parsed: list[tuple[RawMessage, ParsedMessage]]
) -> BatchResult:
    result = BatchResult()
    policy = target.policy or load_policy(
        session, company_id=target.company_id, mailbox_id=target.mailbox_id
    )
    identities = list({identity_of(p) for _, p in parsed})
    ids_by_identity = _known_messages(session, target.company_id, identities)
    revisit = _mailbox_dependent_skips(session, target, list(ids_by_identity.values()))
    segment = _segment(session, target, policy)
    threads_matter = policy.participation == "participated"

    def flush() -> None:
        written = segment.flush()
        ids_by_identity.update(written.ids)
        result.links += written.links
        result.records_created += written.records_created

    for raw, message in parsed:
        result.bytes += raw.size
        identity = identity_of(message)
        known = ids_by_identity.get(identity)
        if identity in segment.identities or (known is not None and known not in revisit):
            continue
        direction = classify_direction(message, target.directory)
        if direction == "inbound" and SENT_LABEL in raw.labels:
            direction = "outbound"  # Gmail says the owner sent it (an address not yet known)
        mail = _view(message, direction, policy, raw if target.defer_bodies else None)
        if threads_matter and segment.identities & _thread_ids(message):
            flush()  # the participation filter reads the earlier messages of the thread
        decision = decide(session, mail, policy)
        complete = not target.defer_bodies or mail.content_loaded
        if mail.content_loaded:
            message = mail.content
        if known is not None:
            revisit.discard(known)
            if decision.skipped_by is None:
                flush()
                item = Item(raw, message, identity, direction, decision, mail, complete)
                _revive(session, target, known, item, policy, result)
            continue
        segment.add(Item(raw, message, identity, direction, decision, mail, complete))
        result.count_new(message, skipped=decision.skipped_by is not None)
        if decision.skipped_by is None and decision.actions:
            flush()  # its actions may create records the next messages link to
    flush()
    result.copies = _store_copies(session, target, parsed, ids_by_identity)
    return result


def _segment(session: Session, target: IngestTarget, policy: Policy) -> Segment:
    """An empty segment writing into `target` under `policy`."""
    return Segment(
        session,
        company_id=target.company_id,
        mailbox_id=target.mailbox_id,
        directory=target.directory,
        blobs=target.blobs,
        policy=policy,
    )


def _view(
    message: ParsedMessage, direction: str, policy: Policy, raw: RawMessage | None
) -> MailView:
    return MailView(
        parsed=message,
        direction=direction,
        mailbox_id=policy.mailbox_id,
        mailbox_address=policy.mailbox_address,
        own_addresses=policy.own_addresses,
        automated=automation_reason(message),
        content_loader=None if raw is None else partial(_parse_complete, raw),
    )


def _parse_complete(raw: RawMessage) -> ParsedMessage:
    return parse_message(raw.load())


def _thread_ids(message: ParsedMessage) -> set[str]:
    refs = {identity_for(r) for r in message.references}
    if message.in_reply_to:
        refs.add(identity_for(message.in_reply_to))
    return refs


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
    query = select(MessageSkip.message_id).where(
        MessageSkip.message_id.in_(message_ids),
        MessageSkip.skipped_by.in_(MAILBOX_DEPENDENT),
        MessageSkip.mailbox_id.is_not(None),
    )
    if target.mailbox_id is not None:
        query = query.where(MessageSkip.mailbox_id != target.mailbox_id)
    return set(session.scalars(query))


def _revive(
    session: Session,
    target: IngestTarget,
    message_id: int,
    item: Item,
    policy: Policy,
    result: BatchResult,
) -> None:
    """A message another mailbox skipped, which this mailbox logs: store it fully, link."""
    row = session.get(Message, message_id)
    if row is None:  # pragma: no cover - the id was just read in this transaction
        return
    session.execute(delete(MessageSkip).where(MessageSkip.message_id == message_id))
    parsed = item.parsed
    row.subject = clean_text(parsed.subject)
    row.raw_sha256, row.raw_location = store_raw(target.blobs, item.raw)
    row.bodies_parsed = item.complete
    if item.complete:
        row.text_body = clean_text(parsed.text)
        row.html_body = clean_text(parsed.html)
    people, files = content_rows(
        target.blobs, target.company_id, message_id, parsed, complete=item.complete
    )
    for model, values in ((MessageAddress, people), (Attachment, files)):
        if values:
            session.execute(insert(cast(Table, model.__table__)), values)
    session.flush()
    segment = _segment(session, target, policy)
    written = segment.match([(message_id, item)])
    result.links += written.links
    result.records_created += written.records_created


def _store_copies(
    session: Session,
    target: IngestTarget,
    parsed: Sequence[tuple[RawMessage, ParsedMessage]],
    ids_by_identity: dict[str, int],
) -> int:
    if target.mailbox_id is None:
        return 0
    places = {(raw.folder, raw.uidvalidity, raw.uid): identity_of(msg) for raw, msg in parsed}
    by_place = {(raw.folder, raw.uidvalidity, raw.uid): raw for raw, _ in parsed}
    # A batch is one folder and UIDVALIDITY: one plain `uid IN (…)` per pair, cheaper to
    # build than a tuple IN of every (folder, uidvalidity, uid) (bench/README.md).
    uids: dict[tuple[str, int], list[int]] = {}
    for folder, uidvalidity, uid in places:
        uids.setdefault((folder, uidvalidity), []).append(uid)
    existing: set[tuple[str, int, int]] = set()
    for (folder, uidvalidity), some in uids.items():
        found = session.scalars(
            select(MessageCopy.uid).where(
                MessageCopy.mailbox_id == target.mailbox_id,
                MessageCopy.folder == folder,
                MessageCopy.uidvalidity == uidvalidity,
                MessageCopy.uid.in_(some),
            )
        )
        existing.update((folder, uidvalidity, uid) for uid in found)
    rows = [
        {
            "message_id": ids_by_identity[identity],
            "mailbox_id": target.mailbox_id,
            "folder": folder,
            "uidvalidity": uidvalidity,
            "uid": uid,
            "flags": sorted(by_place[folder, uidvalidity, uid].flags),  # never written back
            "labels": sorted(by_place[folder, uidvalidity, uid].labels),  # Gmail's
            "server_id": by_place[folder, uidvalidity, uid].server_id,  # X-GM-MSGID
        }
        for (folder, uidvalidity, uid), identity in places.items()
        if (folder, uidvalidity, uid) not in existing
    ]
    insert_rows(session, cast(Table, MessageCopy.__table__), rows)
    return len(rows)

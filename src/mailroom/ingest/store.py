"""Write ingested messages in bulk: one INSERT per table per segment, not one per row.

`Segment` collects the new messages of a batch that ingestion decided about and writes
them together: the message rows (ids chosen first, then one executemany: db/bulk.py),
their skip records, participants and attachments, their raw blobs, then plans and writes their
links in one `plan_links` / `apply_links` call, and last applies the rule actions of the
segment's last message. Ingestion flushes a segment whenever what comes next could
depend on it (a rule action, which creates records later messages may link to; a
`participated` policy asking whether the owner wrote an earlier message of the thread), so
the result is the same as storing and matching one message at a time in batch order —
links, reasons and created records alike.

Writes happen in the caller's transaction; nothing here commits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.orm import Session

from mailroom.connectors.base import RawMessage
from mailroom.db.bulk import insert_rows, insert_with_ids
from mailroom.db.matching_models import MessageSkip
from mailroom.db.models import Attachment, Message, MessageAddress
from mailroom.ingest.actions import apply_actions
from mailroom.mail.blobs import BlobStore
from mailroom.mail.message import ParsedMessage
from mailroom.mail.threads import subject_key
from mailroom.matching.classify import external_participants
from mailroom.matching.conversations import ThreadInput, assign_conversations
from mailroom.matching.directory import CompanyDirectory
from mailroom.matching.filters import Decision
from mailroom.matching.linker import (
    MatchInput,
    apply_links,
    clean_text,
    identity_for,
    plan_links,
    record_feed_skips,
    split_by_feeds,
)
from mailroom.matching.policy import Policy
from mailroom.matching.view import MailView


@dataclass(slots=True)
class Item:
    """One new message waiting in a segment."""

    raw: RawMessage
    parsed: ParsedMessage
    identity: str
    direction: str
    decision: Decision
    mail: MailView
    complete: bool  # `parsed` is the complete parse (bodies and attachments in it)


@dataclass(slots=True)
class Written:
    """What a flushed segment added."""

    ids: dict[str, int] = field(default_factory=dict)  # identity → new message row id
    links: int = 0
    records_created: int = 0


def message_row(
    company_id: int,
    raw: RawMessage,
    parsed: ParsedMessage,
    direction: str,
    decision: Decision,
    *,
    bodies_parsed: bool,
) -> dict[str, Any]:
    """The column values of a new message row (bodies and raw blob are filled later)."""
    date_utc = parsed.date.astimezone(UTC) if parsed.date else None
    row: dict[str, Any] = {
        "company_id": company_id,
        "identity": identity_for(parsed.message_id),
        "message_id": clean_text(parsed.message_id)[:500],
        "message_id_generated": parsed.message_id_generated,
        "date_utc": date_utc,
        "date_text": parsed.date.isoformat() if parsed.date else None,
        # A confidential subject is itself not kept.
        "subject": ""
        if decision.skipped_by == "filter:confidential"
        else clean_text(parsed.subject),
        "from_address": parsed.from_address,
        "from_name": clean_text(parsed.from_[0].name[:300]) if parsed.from_ else "",
        "to_addresses": [a.address for a in parsed.to],
        "cc_addresses": [a.address for a in parsed.cc],
        "bcc_addresses": [a.address for a in parsed.bcc],
        "reply_to_addresses": [a.address for a in parsed.reply_to],
        "in_reply_to": clean_text(parsed.in_reply_to)[:500] if parsed.in_reply_to else None,
        "references": list(parsed.references),
        "direction": direction,
        "text_body": "",
        "html_body": "",
        "size": raw.size,
        "raw_sha256": None,
        "raw_location": None,
        "parse_error": clean_text(parsed.parse_error) if parsed.parse_error else None,
        "bodies_parsed": bodies_parsed,
    }
    row["subject_key"] = subject_key(row["subject"]) or None
    row["threaded"] = True  # by the segment's flush, in the same transaction
    return row


def thread_input(row: dict[str, Any]) -> ThreadInput:
    """What threading needs of a new message row (built by `message_row`)."""
    refs = [*row["references"], *([row["in_reply_to"]] if row["in_reply_to"] else [])]
    people = [row["from_address"], *row["to_addresses"], *row["cc_addresses"]]
    return ThreadInput(
        identity=row["identity"],
        refs=tuple(dict.fromkeys(identity_for(r) for r in refs)),
        subject_key=row["subject_key"] or "",
        date=row["date_utc"],
        participants=frozenset(a.lower() for a in people if a),
    )


def store_raw(blobs: BlobStore, raw: RawMessage) -> tuple[str, str | None]:
    """Store a fetched message's bytes: its SHA-256 and, when the fetch worker staged it in
    a pack (kept as it is, never rewritten), its `raw_location` (mail.packs)."""
    if raw.staged is not None:
        where = blobs.keep(raw.staged.sha256)
        if where is not None:
            return raw.staged.sha256, where
    return blobs.put(raw.load()), None


def content_rows(
    blobs: BlobStore, company_id: int, message_id: int, parsed: ParsedMessage, *, complete: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Participant rows, and (for a complete parse) attachment rows with their blobs."""
    seen: set[tuple[str, str]] = set()
    people = []
    for role, addr in parsed.participants():
        if (role, addr.address) in seen:
            continue
        seen.add((role, addr.address))
        people.append(
            {
                "message_id": message_id,
                "company_id": company_id,
                "role": role,
                "address": addr.address,
                "name": clean_text(addr.name[:300]),
            }
        )
    files = [
        {
            "message_id": message_id,
            "filename": clean_text(att.filename[:500]),
            "content_type": clean_text(att.content_type[:200]),
            "size": att.size,
            "sha256": blobs.put(att.data),
        }
        for att in (parsed.attachments if complete else ())
    ]
    return people, files


class Segment:
    """New messages of one batch, written and matched together (see the module doc)."""

    def __init__(
        self,
        session: Session,
        *,
        company_id: int,
        mailbox_id: int | None,
        directory: CompanyDirectory,
        blobs: BlobStore,
        policy: Policy,
    ) -> None:
        self.session = session
        self.company_id = company_id
        self.mailbox_id = mailbox_id
        self.directory = directory
        self.blobs = blobs
        self.policy = policy
        self.items: list[Item] = []
        self.identities: set[str] = set()

    def add(self, item: Item) -> None:
        """Queue one message for the next flush."""
        self.items.append(item)
        self.identities.add(item.identity)

    def flush(self) -> Written:
        """Write, match and act on the waiting messages; the segment is empty after."""
        items, self.items, self.identities = self.items, [], set()
        written = Written()
        if not items:
            return written
        rows = []
        for item in items:
            logged = item.decision.skipped_by is None
            row = message_row(
                self.company_id,
                item.raw,
                item.parsed,
                item.direction,
                item.decision,
                bodies_parsed=item.complete or not logged,
            )
            if logged or item.parsed.parse_error:
                row["raw_sha256"], row["raw_location"] = store_raw(self.blobs, item.raw)
            if logged and item.complete:
                row["text_body"] = clean_text(item.parsed.text)
                row["html_body"] = clean_text(item.parsed.html)
            rows.append(row)
        # Core INSERTs on the tables (not the ORM's bulk path), on SQLite as one executemany of
        # tuples (db/bulk.py). Identities are unique within a segment.
        ids = insert_with_ids(self.session, cast(Table, Message.__table__), rows, key="identity")
        alone = assign_conversations(
            self.session,
            company_id=self.company_id,
            inputs=[thread_input(r) for r in rows],
            internal=self.directory.is_internal,
        )
        skips, people, files = [], [], []
        for item, message_id in zip(items, ids, strict=True):
            written.ids[item.identity] = message_id
            if item.decision.skipped_by is not None:
                skips.append(
                    {
                        "message_id": message_id,
                        "company_id": self.company_id,
                        "skipped_by": str(item.decision.skipped_by),
                        "detail": clean_text(item.decision.detail)[:1000],
                        "mailbox_id": self.mailbox_id,
                    }
                )
                continue
            mine, theirs = content_rows(
                self.blobs, self.company_id, message_id, item.parsed, complete=item.complete
            )
            people += mine
            files += theirs
        for model, values in ((MessageSkip, skips), (MessageAddress, people), (Attachment, files)):
            insert_rows(self.session, cast(Table, model.__table__), values)
        matched = self.match(
            [
                (message_id, item)
                for item, message_id in zip(items, ids, strict=True)
                if item.decision.skipped_by is None
            ],
            alone=alone,
        )
        written.links, written.records_created = matched.links, matched.records_created
        return written

    def match(
        self, logged: list[tuple[int, Item]], *, alone: frozenset[str] = frozenset()
    ) -> Written:
        """Plan and write the links of stored messages, then the last one's rule actions.
        `alone`: the identities in conversations of this batch only (assign_conversations)."""
        written = Written()
        if not logged:
            return written
        plans = plan_links(
            self.session,
            company_id=self.company_id,
            inputs=[
                self.match_input(message_id, item, alone=item.identity in alone)
                for message_id, item in logged
            ],
            opportunity_policy=self.policy.opportunity_policy,
        )
        plans, refused = split_by_feeds(plans, self.policy.feeds)
        written.links = len(apply_links(self.session, company_id=self.company_id, plans=plans))
        if refused:  # the mailbox feeds other record types: kept for `why`
            record_feed_skips(
                self.session,
                company_id=self.company_id,
                mailbox_id=self.mailbox_id,
                feeds=self.policy.feeds,
                refused=refused,
            )
        message_id, last = logged[-1]
        if last.decision.actions:
            row = self.session.get(Message, message_id)
            assert row is not None  # stored in this transaction
            written.records_created = apply_actions(
                self.session,
                message=row,
                mail=last.mail,
                rules=last.decision.actions,
                policy=self.policy,
                directory=self.directory,
            )
        return written

    def match_input(self, message_id: int, item: Item, *, alone: bool = False) -> MatchInput:
        """What the linker needs to know of a stored message."""
        parsed = item.parsed
        return MatchInput(
            message_id=message_id,
            identity=item.identity,
            participants=external_participants(parsed, self.directory),
            subject=clean_text(parsed.subject),
            in_reply_to=clean_text(parsed.in_reply_to)[:500] if parsed.in_reply_to else None,
            references=tuple(parsed.references),
            new_conversation=alone,
        )

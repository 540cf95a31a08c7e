"""Conversations: which stored messages belong together.

A conversation is a connected set of message ids. Two ids are connected when one message
names the other in References or In-Reply-To (the whole chain, in any order of arrival,
parents missing or not), and — for mail that has no References/In-Reply-To, such as
Enron's — when two messages have the same subject once `Re:`/`Fwd:`… are stripped
(mail.threads.subject_key), share a participant and are at most `WINDOW` apart (at least
one of the two without references, so the rule does not depend on which came first). The
shared participant must be an outside one unless both messages are among the company's own
people: two clients who each sent "Quote request" to one salesperson are two conversations.

The subject fallback's pairs come from matching.subject_threads. The union-find is
persisted: `conversation_nodes` maps every id to its conversation's label.
Ingesting a batch reads the nodes of the batch's ids only, unions in memory, and relabels
when a message joins conversations that were apart (the smaller labels move to the
smallest), so the work is proportional to the batch and to what it merges, never to the
history. Readers turn a message into its conversation with `conversation_keys`.

Mail stored before conversations existed (migration 0010) has no node: `backfill`, run by
`ConversationBackfill` in `mailroom serve` until nothing is left, threads it a chunk at a
time (the result does not depend on the order, so chunks may come in any order).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from sqlalchemy import (
    Table,
    and_,
    bindparam,
    case,
    delete,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from mailroom.app import App
from mailroom.db.bulk import insert_rows
from mailroom.db.engine import transaction
from mailroom.db.models import Conversation, ConversationNode, Message
from mailroom.mail.threads import subject_key
from mailroom.matching.directory import load_directory
from mailroom.matching.linker import identity_for
from mailroom.matching.subject_threads import WINDOW, ThreadInput, chunks, subject_unions
from mailroom.periodic import Periodic

__all__ = [
    "WINDOW",
    "ConversationBackfill",
    "ThreadInput",
    "assign_conversations",
    "backfill",
    "conversation_keys",
]

log = logging.getLogger(__name__)
_LABEL = "\x00conversation:"
_LOCK_SPACE = 0x4D52  # pg_advisory_xact_lock's first key: Mailroom's conversations


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, item: str) -> str:
        parent = self.parent.setdefault(item, item)
        while parent != self.parent[parent]:
            self.parent[parent] = self.parent[self.parent[parent]]
            parent = self.parent[parent]
        self.parent[item] = parent
        return parent

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def groups(self) -> list[list[str]]:
        out: dict[str, list[str]] = {}
        for item in list(self.parent):
            out.setdefault(self.find(item), []).append(item)
        return list(out.values())


_N = ConversationNode.__table__.c
_NODES = select(_N.identity, _N.conversation_id).where(
    _N.company_id == bindparam("company"), _N.identity.in_(bindparam("ids", expanding=True))
)


def assign_conversations(
    session: Session,
    *,
    company_id: int,
    inputs: Sequence[ThreadInput],
    internal: Callable[[str], bool] = lambda _address: False,
) -> frozenset[str]:
    """Put newly stored messages into conversations: join, create or merge them. `inputs`
    describe the messages as stored in `messages`: the subject fallback takes the batch's
    own from them and skips their rows when it reads the others back (whether or not they
    are inserted yet). `internal` tells the company's own addresses (matching.directory).
    Idempotent.

    Returns the identities whose conversation is new and made of this batch's messages
    only (no id in it had a node before, none is another stored message): no other
    message of it can be linked to anything yet, so matching need not look it up."""
    if not inputs:
        return frozenset()
    _lock(session, company_id)
    uf = _UnionFind()
    for item in inputs:
        uf.find(item.identity)
        for ref in item.refs:
            uf.union(item.identity, ref)
    subject_unions(session, company_id, inputs, uf.union, internal)
    ids = sorted(uf.parent)
    existing: dict[str, int] = {}
    for chunk in chunks(ids):
        rows = session.execute(_NODES, {"company": company_id, "ids": list(chunk)})
        existing.update((identity, label) for identity, label in rows)
    # Ids already in one stored conversation are one group here too, even when nothing in
    # this batch connects them (a label node per conversation; ids have no control chars).
    for identity, label in existing.items():
        uf.union(identity, f"{_LABEL}{label}")
    groups = [[m for m in members if not m.startswith(_LABEL)] for members in uf.groups()]
    stored = [{existing[m] for m in ids_here if m in existing} for ids_here in groups]
    labels = _labels(session, company_id, stored)
    new_nodes = [
        {"company_id": company_id, "identity": m, "conversation_id": label}
        for ids_here, label in zip(groups, labels, strict=True)
        for m in ids_here
        if m not in existing
    ]
    insert_rows(session, _table(ConversationNode), new_nodes)
    batch = {item.identity for item in inputs}
    return frozenset(
        m
        for ids_here, found in zip(groups, stored, strict=True)
        if not found and batch.issuperset(ids_here)
        for m in ids_here
    )


def _lock(session: Session, company_id: int) -> None:
    """Serialise conversation writes of one company until the transaction ends (PostgreSQL;
    SQLite has one writer anyway): two batches naming the same parent, or one merging a
    conversation another is adding to, would otherwise collide or lose nodes."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(:space, :company)"),
            {"space": _LOCK_SPACE, "company": company_id},
        )


def _table(model: type) -> Table:
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


def _labels(session: Session, company_id: int, groups: Sequence[set[int]]) -> list[int]:
    """The conversation each group of ids ends up in (given the labels its stored ids
    have): a new one, the one it already has, or, when it joins several, the smallest, with
    the others' nodes moved onto it. A fixed number of statements for the whole batch (one
    per message cost more than the rest of a batch's ingestion together, bench/README.md):
    the new conversations in one multi-row INSERT (its rows differ by id only, so any
    order of the returned ids will do), the merges in one UPDATE and one DELETE."""
    moves: dict[int, int] = {}  # a merged conversation → the one its nodes move to
    labels: list[int | None] = []
    for found in groups:
        if not found:
            labels.append(None)
            continue
        keep, *others = sorted(found)
        moves.update((other, keep) for other in others)
        labels.append(keep)
    fresh = sum(label is None for label in labels)
    if fresh:
        table = _table(Conversation)
        created = session.execute(
            insert(table).returning(table.c.id), [{"company_id": company_id}] * fresh
        )
        ids = iter(sorted(created.scalars()))
        labels = [next(ids) if label is None else label for label in labels]
    for chunk in chunks(sorted(moves)):  # groups are disjoint: no move targets a mover
        target = case(*((ConversationNode.conversation_id == o, moves[o]) for o in chunk))
        session.execute(
            update(ConversationNode)
            .where(ConversationNode.conversation_id.in_(list(chunk)))
            .values(conversation_id=target)
        )
        session.execute(delete(Conversation).where(Conversation.id.in_(list(chunk))))
    return [label for label in labels if label is not None]


def conversation_keys(session: Session, message_ids: Sequence[int]) -> dict[int, str]:
    """message row id → its conversation, an opaque string equal for every message of one
    conversation and only for them (a message with no node is a conversation of its own)."""
    keys: dict[int, str] = {}
    for chunk in chunks(list(message_ids)):
        rows = session.execute(
            select(Message.id, ConversationNode.conversation_id)
            .outerjoin(
                ConversationNode,
                and_(
                    ConversationNode.company_id == Message.company_id,
                    ConversationNode.identity == Message.identity,
                ),
            )
            .where(Message.id.in_(list(chunk)))
        )
        for mid, label in rows:
            keys[mid] = f"c{label}" if label is not None else f"m{mid}"
    return keys


def backfill(session: Session, *, limit: int = 1000) -> int:
    """Thread up to `limit` stored messages not threaded yet (mail stored before
    conversations existed), filling their subject key; returns how many."""
    rows = session.execute(
        select(
            Message.id,
            Message.company_id,
            Message.identity,
            Message.subject,
            Message.in_reply_to,
            Message.references,
            Message.date_utc,
            Message.from_address,
            Message.to_addresses,
            Message.cc_addresses,
        )
        .where(Message.threaded.is_(False))
        .order_by(Message.id)
        .limit(limit)
    ).all()
    if not rows:
        return 0
    keys = [
        {"id": row.id, "subject_key": subject_key(row.subject) or None, "threaded": True}
        for row in rows
    ]
    session.execute(update(Message), keys)
    by_company: dict[int, list[ThreadInput]] = {}
    for row, key in zip(rows, keys, strict=True):
        refs = [*(row.references or ()), *([row.in_reply_to] if row.in_reply_to else [])]
        people = [row.from_address, *(row.to_addresses or ()), *(row.cc_addresses or ())]
        by_company.setdefault(row.company_id, []).append(
            ThreadInput(
                identity=row.identity,
                refs=tuple(dict.fromkeys(identity_for(r) for r in refs)),
                subject_key=key["subject_key"] or "",
                date=row.date_utc,
                participants=frozenset(a.lower() for a in people if a),
            )
        )
    for company_id, inputs in by_company.items():
        directory = load_directory(session, company_id)
        assign_conversations(
            session, company_id=company_id, inputs=inputs, internal=directory.is_internal
        )
    return len(rows)


class ConversationBackfill(Periodic):
    """Threads mail stored before conversations existed, a chunk per tick, then stops."""

    thread_name = "mailroom-conversations"
    failure = "conversation backfill failed"
    stop_timeout = 10.0
    log = log

    def __init__(self, app: App, *, interval: float = 1.0) -> None:
        self.app = app
        super().__init__(interval=interval)

    def tick(self) -> None:
        """Thread one chunk; stop when nothing is left."""
        with transaction(self.app.sessions) as session:
            done = backfill(session)
        if done:
            log.info("conversations: threaded %d stored messages", done)
        else:
            self.stop_event.set()

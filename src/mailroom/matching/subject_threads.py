"""Conversations' subject fallback: mail without References joins by subject and people.

For mail that has no References/In-Reply-To (Enron's, web forms), matching.conversations
also connects two messages with the same subject key (mail.threads.subject_key) that share
a participant and are at most `WINDOW` apart, at least one of the two without references.
The shared participant must be an outside one unless both messages are among the
company's own people. `subject_unions` finds those pairs for a batch of new messages:
the batch's own from its inputs, the stored ones read back by one query per 500 subject
keys on the (company_id, subject_key, date_utc) index (decision 0037, migration 0027).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Text, bindparam, cast, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from mailroom.db.models import Message
from mailroom.db.times import as_utc

__all__ = ["WINDOW", "ThreadInput", "chunks", "subject_unions"]

WINDOW = timedelta(days=30)
_CHUNK = 500
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class ThreadInput:
    """What threading needs of one newly stored message."""

    identity: str
    refs: tuple[str, ...]  # identities named by References and In-Reply-To
    subject_key: str
    date: datetime | None
    participants: frozenset[str]


def chunks(values: Sequence[_T]) -> Iterable[Sequence[_T]]:
    """`values` in slices of at most 500 (an IN list per statement)."""
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


@dataclass(frozen=True, slots=True)
class _Stored:
    identity: str
    has_refs: bool
    date: datetime
    participants: frozenset[str]


_M = Message.__table__.c


def _candidates_query() -> Select[Any]:
    """The stored messages of some subject keys within a window: Core, not the ORM (its row
    loading was a third of the work), and the JSON lists as their text. Served by the
    (company_id, subject_key, date_utc) index (migration 0027): only the window's rows of
    each key are read."""
    return select(
        _M.subject_key,
        _M.identity,
        _M.in_reply_to,
        cast(_M.references, Text),
        _M.date_utc,
        _M.from_address,
        cast(_M.to_addresses, Text),
        cast(_M.cc_addresses, Text),
    ).where(
        _M.company_id == bindparam("company"),
        _M.subject_key.in_(bindparam("keys", expanding=True)),
        _M.date_utc >= bindparam("first"),
        _M.date_utc <= bindparam("last"),
    )


_CANDIDATES = _candidates_query()


def _subject_candidates(
    session: Session, company_id: int, inputs: Sequence[ThreadInput]
) -> dict[str, list[_Stored]]:
    """subject key → the messages with it, dated within the batch's window, that share a
    person with one of the batch's messages of that key (no other can join one: the
    subject rule needs a shared person). The batch's own are taken from `inputs`; only the
    others are read back, as raw text, and decoded no further than the people needed."""
    found: dict[str, list[_Stored]] = {}
    wanted: dict[str, set[str]] = {}  # subject key → the people of the batch's with it
    for item in inputs:
        date = as_utc(item.date)
        if item.subject_key and date is not None:
            mine = _Stored(item.identity, bool(item.refs), date, item.participants)
            found.setdefault(item.subject_key, []).append(mine)
            wanted.setdefault(item.subject_key, set()).update(item.participants)
    if not found:
        return {}
    dates = [other.date for stored in found.values() for other in stored]
    window = {"first": min(dates) - WINDOW, "last": max(dates) + WINDOW}
    batch = {item.identity for item in inputs}
    for chunk in chunks(sorted(wanted)):
        rows = session.execute(_CANDIDATES, {"company": company_id, "keys": list(chunk), **window})
        for key, identity, parent, refs, date, sender, to, cc in rows:
            if identity in batch:
                continue
            people = [a.lower() for a in (sender, *_list(to), *_list(cc)) if a]
            if wanted[key].isdisjoint(people):
                continue
            has_refs = bool(parent) or bool(_list(refs))
            stored = _Stored(identity, has_refs, as_utc(date) or window["first"], frozenset(people))
            found[key].append(stored)
    return found


def _list(value: str | None) -> list[str]:
    """A JSON list column read as text (`[]` and `null` without parsing)."""
    if value is None or value in ("[]", "null"):
        return []
    decoded: list[str] | None = json.loads(value)
    return decoded or []


class _SubjectIndex:
    """The stored messages of one subject key, found by the people they share.

    Two messages' people must overlap on an outside person, or, when both are among the
    company's own people only, on anyone. A message with outside people never joins an
    inside-only one by subject: an internal "Fwd: Quote request" would otherwise bridge
    every client's "Quote request" to the same salesperson. Indexed: a message with
    outside people meets the messages holding one of them (`outside`); an inside-only one
    meets the inside-only messages holding any of its people (`inside`). Each message's
    outside people are worked out once, not once per pair (a batch of 100 "Quote request"
    web-form mails against hundreds stored with that subject compared every pair:
    bench/README.md, "Resync after 100 new messages").
    """

    def __init__(self, stored: Iterable[_Stored], outside: Callable[[frozenset[str]], set[str]]):
        self.outside: dict[str, list[_Stored]] = {}
        self.inside: dict[str, list[_Stored]] = {}
        for other in stored:
            theirs = outside(other.participants)
            index = self.outside if theirs else self.inside
            for person in theirs or other.participants:
                index.setdefault(person, []).append(other)

    def sharing(self, people: frozenset[str], outside: set[str]) -> Iterable[_Stored]:
        """The stored messages whose people overlap `people` (with `outside` the outside
        ones among them) as the class says, each once."""
        index, keys = (self.outside, outside) if outside else (self.inside, people)
        found: dict[str, _Stored] = {}
        for person in keys:
            for other in index.get(person, ()):
                found.setdefault(other.identity, other)
        return found.values()


def subject_unions(
    session: Session,
    company_id: int,
    inputs: Sequence[ThreadInput],
    union: Callable[[str, str], None],
    internal: Callable[[str], bool],
) -> None:
    """Call `union` on each (new message, message) pair the subject rule connects: the
    batch's messages (`inputs`, already stored) with each other and with stored ones.
    `internal` tells the company's own addresses."""
    candidates = _subject_candidates(session, company_id, inputs)
    known: dict[frozenset[str], set[str]] = {}

    def outside(people: frozenset[str]) -> set[str]:
        found = known.get(people)
        if found is None:
            found = known[people] = {x for x in people if not internal(x)}
        return found

    indexes: dict[str, _SubjectIndex] = {}
    for item in inputs:
        date = as_utc(item.date)
        if not item.subject_key or date is None:
            continue
        index = indexes.get(item.subject_key)
        if index is None:
            stored = candidates.get(item.subject_key, ())
            index = indexes[item.subject_key] = _SubjectIndex(stored, outside)
        for other in index.sharing(item.participants, outside(item.participants)):
            if (
                other.identity != item.identity
                and (not item.refs or not other.has_refs)
                and abs(other.date - date) <= WINDOW
            ):
                union(item.identity, other.identity)

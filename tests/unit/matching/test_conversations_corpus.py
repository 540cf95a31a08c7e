"""Conversations on real mail, checked against an independent grouping computed here from
the raw files with the standard library: linux-mips (References/In-Reply-To chains) and
Enron (no References at all: the subject fallback)."""

from __future__ import annotations

import mailbox
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.header import decode_header
from email.message import Message as StdMessage
from email.utils import parsedate_to_datetime
from pathlib import Path

from sqlalchemy import select

from mailroom.app import App
from mailroom.connectors.base import RawMessage
from mailroom.crm.companies import add_company
from mailroom.db.engine import transaction
from mailroom.db.models import Message
from mailroom.ingest.batch import IngestTarget, ingest_batch
from mailroom.matching.conversations import conversation_keys
from mailroom.matching.directory import load_directory
from mailroom.matching.policy import update_settings

BATCH = 400
WINDOW = timedelta(days=30)
ID = re.compile(r"<([^<>\s]+)>")
ADDRESS = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
ZERO_YEAR = re.compile(r"[A-Za-z]{3}\s+0\d{3}\s")  # Enron's `0001` years: no usable date
PREFIX = ("re", "fw", "fwd", "aw", "wg", "tr", "sv", "vs", "antw", "rif", "r", "odp", "pd")


class Groups:
    """A plain union-find over Message-IDs, separate from Mailroom's."""

    def __init__(self) -> None:
        self.up: dict[str, str] = {}

    def root(self, x: str) -> str:
        self.up.setdefault(x, x)
        while self.up[x] != x:
            x = self.up[x]
        return x

    def join(self, a: str, b: str) -> None:
        self.up[self.root(a)] = self.root(b)


def header(msg: StdMessage, name: str) -> str:
    return " ".join(str(v) for v in msg.get_all(name) or ())


def decoded(value: str) -> str:
    """An RFC 2047 header value as text (unknown charsets read as Latin-1)."""
    out = []
    for part, charset in decode_header(value):
        if isinstance(part, str):
            out.append(part)
            continue
        try:
            out.append(part.decode(charset or "ascii"))
        except (LookupError, UnicodeDecodeError):
            out.append(part.decode("latin-1"))
    return "".join(out)


def plain_subject(value: str) -> str:
    words = " ".join(value.split())
    while True:
        head, colon, rest = words.partition(":")
        tag = re.sub(r"(\[\d+\]|\(\d+\)|\^\d+)$", "", head.strip().lower()).strip()
        if not colon or tag not in PREFIX:
            return words.lower()
        words = rest.strip()


def date_of(msg: StdMessage) -> datetime | None:
    if ZERO_YEAR.search(header(msg, "Date")):
        return None
    try:
        value = parsedate_to_datetime(header(msg, "Date"))
    except (TypeError, ValueError, IndexError):
        return None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def independent_partition(raws: Iterable[bytes]) -> set[frozenset[str]]:
    """Conversations as sets of Message-IDs: the reference chains, then same plain subject,
    a shared From/To/Cc address and at most 30 days apart, one side without references."""
    groups = Groups()
    by_subject: dict[str, list[tuple[str, datetime, set[str], bool]]] = {}
    for raw in raws:
        msg = message_from_bytes(raw)
        found = ID.findall(header(msg, "Message-ID"))
        if not found:
            continue  # a generated identity: left out of the comparison
        me = found[0]
        refs = ID.findall(header(msg, "References")) + ID.findall(header(msg, "In-Reply-To"))[:1]
        groups.root(me)
        for ref in refs:
            groups.join(me, ref)
        subject, date = plain_subject(decoded(header(msg, "Subject"))), date_of(msg)
        if subject and date:
            people = {
                a.lower().strip(".")
                for name in ("From", "To", "Cc")
                for a in ADDRESS.findall(header(msg, name))
            }
            by_subject.setdefault(subject, []).append((me, date, people, bool(refs)))
    for items in by_subject.values():
        for i, (a, da, pa, ra) in enumerate(items):
            for b, db, pb, rb in items[i + 1 :]:
                if (not ra or not rb) and abs(da - db) <= WINDOW and pa & pb:
                    groups.join(a, b)
    out: dict[str, set[str]] = {}
    for node in groups.up:
        out.setdefault(groups.root(node), set()).add(node)
    return {frozenset(v) for v in out.values()}


def stored_partition(app: App, raws: list[bytes]) -> set[frozenset[str]]:
    """Ingest `raws` into a new company and read back its conversations."""
    with transaction(app.sessions) as session:
        company = add_company(session, name="Corpus", domains=["corpus.invalid"])
        # Confidential mail keeps no subject, so it could not join by one: this compares
        # grouping, not filtering, so that filter is off.
        update_settings(session, company=company, confidential=[])
        company_id = company.id
    for start in range(0, len(raws), BATCH):
        with transaction(app.sessions) as session:
            target = IngestTarget(
                company_id=company_id,
                mailbox_id=None,
                directory=load_directory(session, company_id),
                blobs=app.blobs,
            )
            batch = [
                RawMessage(folder="INBOX", uidvalidity=1, uid=start + i + 1, data=d)
                for i, d in enumerate(raws[start : start + BATCH])
            ]
            ingest_batch(session, target, batch)
    with app.sessions() as session:
        rows = {
            mid: message_id
            for mid, message_id in session.execute(
                select(Message.id, Message.message_id).where(
                    Message.company_id == company_id, Message.message_id_generated.is_(False)
                )
            )
        }
        keys = conversation_keys(session, list(rows))
    out: dict[str, set[str]] = {}
    for mid, key in keys.items():
        out.setdefault(key, set()).add(rows[mid])
    return {frozenset(v) for v in out.values()}


def restrict(partition: set[frozenset[str]], ids: set[str]) -> set[frozenset[str]]:
    """The groups as seen on stored messages only (ids named but never stored dropped)."""
    return {g & ids for g in partition if g & ids}


def mips_messages(corpus: Path) -> Iterator[bytes]:
    for path in sorted((corpus / "conversations" / "linux-mips").glob("*.mbox")):
        box = mailbox.mbox(path)
        for key in box.iterkeys():
            yield box.get_bytes(key)


def enron_messages(corpus: Path) -> Iterator[bytes]:
    for path in sorted((corpus / "conversations" / "enron").rglob("*.eml")):
        yield path.read_bytes()


def compare(app: App, raws: list[bytes]) -> tuple[set[frozenset[str]], set[frozenset[str]]]:
    stored = stored_partition(app, raws)
    ids = {i for g in stored for i in g}
    return stored, restrict(independent_partition(raws), ids)


def sizes(partition: set[frozenset[str]]) -> list[int]:
    return sorted((len(g) for g in partition), reverse=True)


def test_linux_mips_reference_chains_match_an_independent_grouping(
    sqlite_app: App, corpus: Path
) -> None:
    stored, expected = compare(sqlite_app, list(mips_messages(corpus)))
    assert len(stored) == len(expected)
    assert sizes(stored) == sizes(expected)
    assert stored == expected
    assert sum(1 for g in stored if len(g) > 1) > 400  # the README counts 474 threads


def test_enron_subject_fallback_matches_an_independent_grouping(
    sqlite_app: App, corpus: Path
) -> None:
    stored, expected = compare(sqlite_app, list(enron_messages(corpus)))
    assert len(stored) == len(expected)
    assert sizes(stored) == sizes(expected)
    assert stored == expected
    assert sum(1 for g in stored if len(g) > 1) > 300

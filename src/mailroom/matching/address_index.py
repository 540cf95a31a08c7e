"""The in-memory address, domain and opportunity index of a company, kept in step through
the database.

Matching looks up every participant's address (and the domains of the unknown ones) for
every message; at a million records an indexed query per batch still costs more than the
rest of matching together. So each process keeps, per database and company, a dict
address → the records holding it, domain → the accounts holding it and parent → its open
opportunities, and asks the
database one question per batch: the newest id in `record_index_changes` (written by
triggers on `record_emails`, `record_domains` and `records`, migration 0012). Equal to the
id the index was built at: answer from memory. Newer: apply the changed keys (re-read from
the database, at most `DELTA_LIMIT` of them; more, and the index is rebuilt), then answer.
Several processes agree because they all follow the same log.

On PostgreSQL a change's id is drawn from a sequence when the row is written, not when it
commits, so a transaction can commit a change below an id already applied. The index
therefore also remembers which transactions were in progress when it read the newest id
(its snapshot's in-progress list; each log row carries its writer's transaction id,
`xact`), and re-reads those transactions' rows once they have ended, whatever their ids
(decision 0035). A transaction that began after that read draws ids above it, so nothing
else can be missed. SQLite's writers take turns: ids commit in order there.

On PostgreSQL that one question is a round trip to the server's process, which on a busy
machine costs as much as matching a batch; `checking` sends it ahead (db.ask_ahead) and
lets matching look up in the shared index as it stands while it travels, keeping those
lookups only when the answer says `view` would have given the same index (decision 0036).

What it reads from the database (everything, some keys, the keys a stretch of the log
touched) is matching.index_reads. Only committed changes enter the shared index: it is
refreshed on a connection of its own.
Changes the caller's own transaction has made and not yet committed (a rule that just
created a lead from this batch) are read in the caller's session and laid over the shared
index for this call only, so a rollback never leaves them behind.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    Text,
    bindparam,
    cast,
    exists,
    func,
    select,
)
from sqlalchemy.orm import Session, aliased

from mailroom.db import ask_ahead
from mailroom.db.engine import READ_ONLY
from mailroom.db.matching_models import RecordIndexChange
from mailroom.db.models import RecordEmail
from mailroom.matching.address_table import AddressTable
from mailroom.matching.index import (
    AddressHit,
    Opportunity,
)
from mailroom.matching.index_reads import (
    ALL_ADDRESSES,
    changed_keys,
    read_addresses,
    read_domains,
    read_opportunities,
)

OVERLAY_LIMIT = 50_000  # changed addresses laid over the packed table before it is rebuilt

_LATEST = select(func.max(RecordIndexChange.id)).where(
    RecordIndexChange.company_id == bindparam("company_id")
)
_OWN_XACT = cast(cast(func.pg_current_xact_id_if_assigned(), Text), BigInteger)
_MINE = aliased(RecordIndexChange)
# The same, with the snapshot it was read in, the reader's own transaction if it has one,
# and whether that transaction has written changes of its own.
_LATEST_PG = select(
    func.max(RecordIndexChange.id),
    cast(func.pg_current_snapshot(), Text),
    _OWN_XACT,
    exists().where(_MINE.company_id == bindparam("company_id"), _MINE.xact == _OWN_XACT),
).where(RecordIndexChange.company_id == bindparam("company_id"))


@dataclass(slots=True)
class _Index:
    """One company's index as of change id `version` (0: the log was empty): the packed
    table as last built, the addresses changed since laid over it (() where removed)."""

    version: int = -1  # -1: never loaded
    generation: int = 0  # counts the refreshes: lookups made at one generation agree
    running: frozenset[int] = frozenset()  # transactions in progress when `version` was read
    table: AddressTable = field(default_factory=lambda: AddressTable(()))
    addresses: dict[str, tuple[AddressHit, ...]] = field(default_factory=dict)  # over `table`
    domains: dict[str, tuple[int, ...]] = field(default_factory=dict)
    opportunities: dict[int, tuple[Opportunity, ...]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


_INDEXES: weakref.WeakKeyDictionary[Engine, dict[int, _Index]] = weakref.WeakKeyDictionary()
_INDEXES_LOCK = threading.Lock()


def _index_of(engine: Engine, company_id: int) -> _Index:
    with _INDEXES_LOCK:
        indexes = _INDEXES.setdefault(engine, {})
        if company_id not in indexes:  # not setdefault: an _Index per call costs a table
            indexes[company_id] = _Index()
        return indexes[company_id]


@dataclass(frozen=True, slots=True)
class _Position:
    """The newest change id a statement saw, the other transactions then in progress
    (PostgreSQL; empty on SQLite), the reader's own transaction (None: none yet) and
    whether it has written changes (PostgreSQL; on SQLite they are the ids above the
    shared index's, all of them)."""

    newest: int
    running: frozenset[int] = frozenset()
    own: int | None = None
    own_changes: bool = False

    def ended(self, running: frozenset[int]) -> frozenset[int]:
        """Which of `running` (an index's in-progress list) have committed or rolled back
        by this position; the reader's own transaction never counts as ended."""
        return frozenset(running - self.running - {self.own})


def _running(snapshot: str) -> frozenset[int]:
    """The in-progress list of a `pg_current_snapshot()` ("xmin:xmax:xip,…")."""
    xip = snapshot.rsplit(":", 1)[1]
    return frozenset(int(xact) for xact in xip.split(",") if xact)


def _position(conn: Connection, company_id: int) -> _Position:
    if conn.dialect.name != "postgresql":
        return _Position(int(conn.execute(_LATEST, {"company_id": company_id}).scalar() or 0))
    newest, snapshot, own, own_changes = conn.execute(_LATEST_PG, {"company_id": company_id}).one()
    return _Position(int(newest or 0), _running(str(snapshot)), own, bool(own_changes))


# `_LATEST_PG` as text for libpq (db.ask_ahead), answered as text.
_LATEST_PG_SQL = b"""SELECT max(id), pg_current_snapshot()::text,
 pg_current_xact_id_if_assigned()::text::bigint,
 EXISTS (SELECT FROM record_index_changes mine WHERE mine.company_id = $1::integer
  AND mine.xact = pg_current_xact_id_if_assigned()::text::bigint)
FROM record_index_changes WHERE company_id = $1::integer"""


def _position_of(row: tuple[bytes | None, ...] | None) -> _Position:
    """The position in `_LATEST_PG_SQL`'s text answer (an aggregate: always one row)."""
    assert row is not None
    newest, snapshot, own, own_changes = row
    return _Position(
        int(newest or 0),
        _running((snapshot or b"::").decode()),
        None if own is None else int(own),
        own_changes == b"t",
    )


def _apply(target: dict[Any, Any], keys: set[Any], fresh: dict[Any, Any]) -> None:
    for key in keys:
        value = fresh.get(key)
        if value:
            target[key] = value
        else:
            target.pop(key, None)


def _refresh(engine: Engine, company_id: int, index: _Index) -> None:
    """Bring the shared index up to the newest committed change (caller holds its lock)."""
    with engine.connect().execution_options(**{READ_ONLY: True}) as conn:
        position = _position(conn, company_id)
        newest, ended = position.newest, position.ended(index.running)
        if newest == index.version and not ended:
            return
        keys = None
        if index.version >= 0:
            keys = changed_keys(conn, company_id, index.version, newest, ended)
        if keys is None or len(index.addresses) + len(keys.addresses) > OVERLAY_LIMIT:
            rows = conn.execute(ALL_ADDRESSES.where(RecordEmail.company_id == company_id))
            index.table, index.addresses = AddressTable(rows), {}
            index.domains = read_domains(conn, company_id, None)
            index.opportunities = read_opportunities(conn, company_id, None)
        else:
            fresh = read_addresses(conn, company_id, keys.addresses)
            index.addresses.update({key: fresh.get(key, ()) for key in keys.addresses})
            _apply(index.domains, keys.domains, read_domains(conn, company_id, keys.domains))
            parents = read_opportunities(conn, company_id, keys.parents)
            _apply(index.opportunities, keys.parents, parents)
        index.version, index.running = newest, position.running
        index.generation += 1


@dataclass(frozen=True, slots=True)
class IndexView:
    """The index as the caller's transaction sees it, for one batch."""

    shared: _Index
    own_addresses: dict[str, tuple[AddressHit, ...]]
    own_domains: dict[str, tuple[int, ...]]
    own_opportunities: dict[int, tuple[Opportunity, ...]]
    own_complete: bool = False  # the own tables hold everything: never ask the shared one

    def by_address(self, addresses: Iterable[str]) -> dict[str, tuple[AddressHit, ...]]:
        """address → every record holding it (in record-email order); only the addresses
        some record holds."""
        own, shared = self.own_addresses, self.shared
        with shared.lock:
            overlay = shared.addresses
            if not own and not overlay and not self.own_complete:  # the usual case
                return shared.table.find(addresses)
            found: dict[str, tuple[AddressHit, ...]] = {}
            rest = []
            for address in addresses:
                if address in own:
                    hits = own[address]
                elif self.own_complete:
                    continue
                elif address in overlay:
                    hits = overlay[address]
                else:
                    rest.append(address)
                    continue
                if hits:
                    found[address] = hits
            found.update(shared.table.find(rest))
        return found

    def by_domain(self, domains: Iterable[str]) -> dict[str, list[int]]:
        """domain → the accounts holding it."""
        found: dict[str, list[int]] = {}
        own = self.own_domains
        with self.shared.lock:
            table = {} if self.own_complete else self.shared.domains
            for domain in domains:
                ids = own[domain] if domain in own else table.get(domain)
                if ids:
                    found[domain] = list(ids)
        return found

    def any_opportunities(self) -> bool:
        """Whether any open opportunity may be found (False: matching need not gather its
        contacts' parents at all)."""
        if self.own_opportunities:
            return True
        with self.shared.lock:
            return not self.own_complete and bool(self.shared.opportunities)

    def open_opportunities(self, parents: Iterable[int]) -> dict[int, list[Opportunity]]:
        """parent record id (a contact or an account) → its open opportunities."""
        found: dict[int, list[Opportunity]] = {}
        with self.shared.lock:
            table = {} if self.own_complete else self.shared.opportunities
            if not table and not self.own_opportunities:  # a company with none open
                return found
            for parent in parents:
                opps = self.own_opportunities.get(parent, table.get(parent))
                if opps:
                    found[parent] = list(opps)
        return found


def view(session: Session, *, company_id: int) -> IndexView:
    """The company's index as `session` sees it: one indexed query when nothing changed."""
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    index = _index_of(engine, company_id)
    position = _position(session.connection(), company_id)
    return _view_at(session, engine, company_id, index, position)


def _view_at(
    session: Session, engine: Engine, company_id: int, index: _Index, position: _Position
) -> IndexView:
    mine = position.newest
    with index.lock:
        if mine > index.version or position.ended(index.running):
            _refresh(engine, company_id, index)
        shared_version = index.version
    own = frozenset({position.own}) if position.own_changes and position.own else frozenset()
    if mine <= shared_version and not own:
        return IndexView(index, {}, {}, {})
    # The caller's own uncommitted changes (and whatever committed since the shared index
    # read the log), for this call only.
    keys = changed_keys(session, company_id, shared_version, mine, own, ended=False)
    if keys is None:  # more than DELTA_LIMIT of them: read the whole index in the session
        return IndexView(
            index,
            read_addresses(session, company_id, None),
            read_domains(session, company_id, None),
            read_opportunities(session, company_id, None),
            own_complete=True,
        )
    own_addresses = read_addresses(session, company_id, keys.addresses)
    own_domains = read_domains(session, company_id, keys.domains)
    own_opportunities = read_opportunities(session, company_id, keys.parents)
    own_addresses.update({a: () for a in keys.addresses - own_addresses.keys()})
    own_domains.update({d: () for d in keys.domains - own_domains.keys()})
    own_opportunities.update({p: () for p in keys.parents - own_opportunities.keys()})
    return IndexView(index, own_addresses, own_domains, own_opportunities)


class Check:
    """The version check of `checking`: `guess` is the shared index as it stands, to look
    up in while the check is on its way; `view` is what `view` would have answered."""

    def __init__(
        self,
        session: Session,
        company_id: int,
        guess: IndexView,
        asked: ask_ahead.Asked | None = None,
        generation: int = 0,  # the shared index's when `guess` was taken
    ) -> None:
        self.guess = guess
        self._session, self._company_id = session, company_id
        self._asked, self._generation = asked, generation

    def view(self) -> IndexView:
        """`guess` itself when its lookups stand (nothing changed; usual), else the view
        to look up in again."""
        asked, self._asked = self._asked, None
        if asked is None:
            return self.guess
        position = _position_of(asked.answer())
        index = self.guess.shared
        with index.lock:  # the guess looked up at this generation: is it what view finds?
            stands = (
                index.generation == self._generation
                and position.newest <= index.version
                and not position.ended(index.running)
                and not (position.own_changes and position.own)
            )
        if stands:
            return self.guess
        engine = self._session.get_bind()
        assert isinstance(engine, Engine)
        return _view_at(self._session, engine, self._company_id, index, position)

    def close(self) -> None:
        """Read the check's answer if `view` was not called (an error on the way)."""
        if self._asked is not None:
            self._asked.close()


@contextmanager
def checking(session: Session, *, company_id: int) -> Iterator[Check]:
    """`view`, with its round trip overlapped: on PostgreSQL inside an open transaction the
    version check is sent, the caller looks up in `Check.guess` meanwhile, and
    `Check.view()` reads the answer (the same index `view` gives, with the lookups made
    again only when it differs from the guess). Elsewhere the check runs at once."""
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    index = _index_of(engine, company_id)
    with index.lock:
        guess = IndexView(index, {}, {}, {})
        generation = index.generation
    asked = None
    if index.version >= 0:  # an index never loaded is no guess worth making
        asked = ask_ahead.ask(session.connection(), _LATEST_PG_SQL, [company_id])
    if asked is None:
        check = Check(session, company_id, view(session, company_id=company_id))
    else:
        check = Check(session, company_id, guess, asked, generation)
    try:
        yield check
    finally:
        check.close()

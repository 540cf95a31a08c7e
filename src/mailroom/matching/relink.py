"""Retro-linking: a record created or edited later links the stored mail that matches it.

It finds the stored messages that could concern the record — those with one of its
addresses (for an account also its contacts' addresses and any address at its domains;
for an opportunity its contact's or its account's contacts' addresses) — and runs them
through the very matcher ingestion uses (`linker.plan_links` + `apply_links`), so the
links and reasons are the ones a fresh sync would give, removed links stay removed, and
running it twice changes nothing. Skipped messages (filters, ignore rules) are never
candidates. Address lookups use the `message_addresses (company_id, address)` index; the
domain lookup of an account is a `LIKE '%@domain'` over the company's participants, paid
once per account edit, never during sync.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from mailroom.db.matching_models import MessageSkip
from mailroom.db.models import Message, MessageAddress, Record, RecordEmail
from mailroom.matching.directory import CompanyDirectory, load_directory
from mailroom.matching.index import chunks
from mailroom.matching.linker import MatchInput, apply_links, plan_links, refuse_unfed
from mailroom.matching.policy import opportunity_policy_of


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def candidate_addresses(session: Session, record: Record) -> set[str]:
    """The addresses whose mail may concern `record` (its own, its contacts', …)."""
    found = {e.address for e in record.emails}
    parents: list[int] = []
    if record.type == "account":
        parents = [record.id]
    elif record.type == "opportunity" and record.account_id is not None:
        parent = session.get(Record, record.account_id)
        if parent is not None:
            found |= {e.address for e in parent.emails}
            if parent.type == "account":
                parents = [parent.id]
    if parents:
        found |= set(
            session.scalars(
                select(RecordEmail.address)
                .join(Record, Record.id == RecordEmail.record_id)
                .where(Record.account_id.in_(parents), Record.type == "contact")
            )
        )
    return found


def candidate_messages(
    session: Session, *, company_id: int, addresses: Iterable[str], domains: Iterable[str]
) -> list[int]:
    """Ids of stored, unskipped messages with one of `addresses` or an address at `domains`."""
    ids: set[int] = set()
    for part in chunks(sorted(set(addresses))):
        ids.update(
            session.scalars(
                select(MessageAddress.message_id).where(
                    MessageAddress.company_id == company_id, MessageAddress.address.in_(part)
                )
            )
        )
    for domain in sorted(set(domains)):
        pattern = _escape_like(domain)
        ids.update(
            session.scalars(
                select(MessageAddress.message_id).where(
                    MessageAddress.company_id == company_id,
                    or_(
                        MessageAddress.address.like(f"%@{pattern}", escape="\\"),
                        MessageAddress.address.like(f"%.{pattern}", escape="\\"),
                    ),
                )
            )
        )
    if not ids:
        return []
    skipped: set[int] = set()
    ordered = sorted(ids)
    for part in chunks(ordered):
        skipped.update(
            session.scalars(select(MessageSkip.message_id).where(MessageSkip.message_id.in_(part)))
        )
    return [i for i in ordered if i not in skipped]


def stored_inputs(
    session: Session, message_ids: list[int], directory: CompanyDirectory
) -> list[MatchInput]:
    """`MatchInput`s rebuilt from stored rows, oldest first (so threads follow in order)."""
    people: dict[int, list[tuple[str, str]]] = {}
    for message_id, role, address in session.execute(
        select(MessageAddress.message_id, MessageAddress.role, MessageAddress.address)
        .where(MessageAddress.message_id.in_(message_ids))
        .order_by(MessageAddress.id)
    ):
        if not directory.is_internal(address):
            people.setdefault(message_id, []).append((role, address))
    rows = session.execute(
        select(
            Message.id, Message.identity, Message.subject, Message.in_reply_to, Message.references
        )
        .where(Message.id.in_(message_ids), Message.direction != "internal")
        .order_by(Message.date_utc.asc().nulls_first(), Message.id)
    )
    return [
        MatchInput(
            message_id=mid,
            identity=identity,
            participants=tuple(people.get(mid, ())),
            subject=subject or "",
            in_reply_to=in_reply_to,
            references=tuple(references or ()),
        )
        for mid, identity, subject, in_reply_to, references in rows
    ]


def relink_messages(session: Session, *, company_id: int, message_ids: list[int]) -> int:
    """Run the matcher again over stored messages; returns the number of new links."""
    if not message_ids:
        return 0
    directory = load_directory(session, company_id)
    policy = opportunity_policy_of(session, company_id)
    created = 0
    for part in chunks(message_ids):
        inputs = stored_inputs(session, list(part), directory)
        plans = plan_links(session, company_id=company_id, inputs=inputs, opportunity_policy=policy)
        plans = refuse_unfed(session, company_id=company_id, plans=plans)  # mailbox feeds
        created += len(apply_links(session, company_id=company_id, plans=plans))
    return created


def relink_record(session: Session, record: Record) -> int:
    """Link the stored mail that matches `record` now; returns the number of new links."""
    session.flush()
    directory = load_directory(session, record.company_id)
    addresses = {a for a in candidate_addresses(session, record) if not directory.is_internal(a)}
    domains = [d.domain for d in record.domains] if record.type == "account" else []
    ids = candidate_messages(
        session, company_id=record.company_id, addresses=addresses, domains=domains
    )
    return relink_messages(session, company_id=record.company_id, message_ids=ids)

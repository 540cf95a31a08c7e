"""Create links between messages and records, idempotently, with their reasons.

One code path serves both directions (issue: retro-linking uses the same code):
- forward: a batch of newly stored messages → every record holding an external
  participant's address (`link_messages`);
- backward: a record created or given a new address → every stored message with that
  address (`link_stored_mail_to_record`).
Links are unique per (message, record), so running either twice changes nothing.
The address index (`record_emails (company_id, address)`) makes a match a few indexed
lookups per batch, never a scan of records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.db.models import Message, MessageAddress, MessageLink, Record, RecordEmail
from mailroom.matching.directory import load_directory

CHUNK = 500


def _chunks(items: list[str], size: int = CHUNK) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def records_for_addresses(
    session: Session, *, company_id: int, addresses: Iterable[str]
) -> dict[str, list[tuple[int, str]]]:
    """address → [(record_id, field)] for every record holding that address."""
    wanted = sorted(set(addresses))
    found: dict[str, list[tuple[int, str]]] = {}
    for chunk in _chunks(wanted):
        rows = session.execute(
            select(RecordEmail.address, RecordEmail.record_id, RecordEmail.field)
            .where(RecordEmail.company_id == company_id, RecordEmail.address.in_(chunk))
            .order_by(RecordEmail.id)
        )
        for address, record_id, field in rows:
            found.setdefault(address, []).append((record_id, field))
    return found


def link_messages(
    session: Session, *, company_id: int, externals: Mapping[int, Iterable[str]]
) -> int:
    """Link each message (id → its external addresses) to the records holding them."""
    by_message = {mid: list(dict.fromkeys(addrs)) for mid, addrs in externals.items()}
    index = records_for_addresses(
        session, company_id=company_id, addresses=(a for v in by_message.values() for a in v)
    )
    if not index:
        return 0
    existing = _existing_links(session, list(by_message))
    created = 0
    for message_id, addresses in by_message.items():
        for address in addresses:
            for record_id, field in index.get(address, ()):
                if (message_id, record_id) in existing:
                    continue
                session.add(
                    MessageLink(
                        message_id=message_id,
                        record_id=record_id,
                        company_id=company_id,
                        reason=f"address:{field}",
                    )
                )
                existing.add((message_id, record_id))
                created += 1
    session.flush()
    return created


def _existing_links(session: Session, message_ids: list[int]) -> set[tuple[int, int]]:
    pairs: set[tuple[int, int]] = set()
    for start in range(0, len(message_ids), CHUNK):
        rows = session.execute(
            select(MessageLink.message_id, MessageLink.record_id).where(
                MessageLink.message_id.in_(message_ids[start : start + CHUNK])
            )
        )
        pairs.update((m, r) for m, r in rows)
    return pairs


def link_stored_mail_to_record(session: Session, record: Record) -> int:
    """Link the mail already stored that has one of the record's (external) addresses."""
    directory = load_directory(session, record.company_id)
    addresses = [e.address for e in record.emails if not directory.is_internal(e.address)]
    if not addresses:
        return 0
    rows = session.execute(
        select(MessageAddress.message_id, MessageAddress.address)
        .join(Message, Message.id == MessageAddress.message_id)
        .where(
            MessageAddress.company_id == record.company_id,
            MessageAddress.address.in_(addresses),
            Message.direction != "internal",
        )
    )
    externals: dict[int, list[str]] = {}
    for message_id, address in rows:
        externals.setdefault(message_id, []).append(address)
    if not externals:
        return 0
    return link_messages(session, company_id=record.company_id, externals=externals)

"""Links made and removed by hand, which automation must respect.

- `link_by_hand` adds a link with the reason `manual` (or turns an automatic link into a
  manual one) and forgets any earlier removal; links are never deleted by a sync, so it
  survives every re-sync.
- `unlink_by_hand` deletes a link and leaves a `LinkTombstone`, which `linker.apply_links`
  checks: neither a re-sync, nor retro-linking, nor a rule re-adds it.
A skipped message cannot be linked by hand: it holds no content to show (see filters).
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from mailroom.db.matching_models import LinkTombstone, MessageSkip
from mailroom.db.models import Message, MessageLink, Record
from mailroom.errors import BadInput, NotFound

MANUAL = "manual"


def _check(session: Session, message: Message, record: Record) -> None:
    if message.company_id != record.company_id:
        raise NotFound(f"No record {record.ref} in the message's company.")
    skip = session.scalar(
        select(MessageSkip.skipped_by).where(MessageSkip.message_id == message.id)
    )
    if skip is not None:
        raise BadInput(
            f"This message was not logged (skipped by {skip}); it cannot be linked.",
            hint="Change the filter or rule that skipped it; later mail will be logged.",
        )


def link_by_hand(session: Session, *, message: Message, record: Record) -> MessageLink:
    """Link the message to the record by hand (reason `manual`), lifting any tombstone."""
    _check(session, message, record)
    session.execute(
        delete(LinkTombstone).where(
            LinkTombstone.message_id == message.id, LinkTombstone.record_id == record.id
        )
    )
    link = session.scalar(
        select(MessageLink).where(
            MessageLink.message_id == message.id, MessageLink.record_id == record.id
        )
    )
    if link is None:
        link = MessageLink(
            message_id=message.id, record_id=record.id, company_id=record.company_id, reason=MANUAL
        )
        session.add(link)
    link.reason = MANUAL
    session.flush()
    return link


def unlink_by_hand(session: Session, *, message: Message, record: Record) -> None:
    """Remove the link and leave a tombstone, so no automatic link brings it back."""
    _check(session, message, record)
    deleted = session.execute(
        delete(MessageLink).where(
            MessageLink.message_id == message.id, MessageLink.record_id == record.id
        )
    )
    if not getattr(deleted, "rowcount", 0):
        raise NotFound(f"The message is not linked to {record.ref}.")
    known = session.scalar(
        select(LinkTombstone.id).where(
            LinkTombstone.message_id == message.id, LinkTombstone.record_id == record.id
        )
    )
    if known is None:
        session.add(
            LinkTombstone(message_id=message.id, record_id=record.id, company_id=record.company_id)
        )
    session.flush()

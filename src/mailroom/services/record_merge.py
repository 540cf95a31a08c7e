"""What a merge moves from the merged record onto the survivor: the one list, `MERGE_STEPS`.

Each step takes (session, source, target) and moves one kind of thing attached to a
record; `services.records.merge_records` runs them in order, then deletes the source. A
new table that hangs off a record (notes, tasks, …) adds its step here, and nothing
attached to a merged record is lost. Every step keeps the unique keys: a message linked to
both records keeps the survivor's link (and its reason).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from mailroom.crm import notes
from mailroom.db.matching_models import LinkTombstone
from mailroom.db.models import MessageLink, Record, RecordDomain, RecordEmail
from mailroom.db.outbox_models import OutboxEntry

MergeStep = Callable[[Session, Record, Record], None]


def move_emails(session: Session, source: Record, target: Record) -> None:
    """The source's addresses the target lacks join it (a second main becomes `secondary`)."""
    have = {e.address for e in target.emails}
    has_main = any(e.field == "main" for e in target.emails)
    for email in list(source.emails):
        if email.address in have:
            continue
        field = "secondary" if email.field == "main" and has_main else email.field
        source.emails.remove(email)
        session.flush()
        target.emails.append(
            RecordEmail(company_id=target.company_id, field=field, address=email.address)
        )
        have.add(email.address)
        has_main = has_main or field == "main"
    session.flush()


def move_domains(session: Session, source: Record, target: Record) -> None:
    """The source's domains the target lacks join it."""
    have = {d.domain for d in target.domains}
    for domain in list(source.domains):
        if domain.domain not in have:
            target.domains.append(RecordDomain(company_id=target.company_id, domain=domain.domain))
            have.add(domain.domain)
    session.flush()


def move_values(session: Session, source: Record, target: Record) -> None:
    """Fields, name, owner and account the target has no value for come from the source."""
    target.fields = {**source.fields, **target.fields}
    if not target.name:
        target.name = source.name
    if target.owner_id is None and source.owner_id is not None:
        target.owner_id = source.owner_id
    if target.account_id is None and source.account_id not in (None, target.id):
        target.account_id = source.account_id
    session.flush()


def _move_pairs(
    session: Session, model: type[MessageLink] | type[LinkTombstone], source: Record, target: Record
) -> None:
    """Move the source's rows of `model` to the target, except for messages the target
    already has a link or a removal for (the target's wins)."""
    taken = (
        select(MessageLink.message_id)
        .where(MessageLink.record_id == target.id)
        .union(select(LinkTombstone.message_id).where(LinkTombstone.record_id == target.id))
        .subquery()
    )
    taken_ids = select(taken.c[0])
    session.execute(
        delete(model).where(model.record_id == source.id, model.message_id.in_(taken_ids)),
        execution_options={"synchronize_session": False},
    )
    session.execute(
        update(model).where(model.record_id == source.id).values(record_id=target.id),
        execution_options={"synchronize_session": False},
    )


def move_links(session: Session, source: Record, target: Record) -> None:
    """The source's mail links (and links removed by hand) move to the target."""
    session.flush()
    # Tombstones first: `taken` must not yet see the source's links moved onto the target.
    _move_pairs(session, LinkTombstone, source, target)
    _move_pairs(session, MessageLink, source, target)


def move_children(session: Session, source: Record, target: Record) -> None:
    """Records under the source (an account's contacts, opportunities) move under the target."""
    session.execute(
        update(Record)
        .where(Record.account_id == source.id, Record.id != target.id)
        .values(account_id=target.id),
        execution_options={"synchronize_session": False},
    )
    if target.account_id == source.id:
        target.account_id = None


def move_outbox(session: Session, source: Record, target: Record) -> None:
    """Mail sent from the source record counts as sent from the target."""
    session.execute(
        update(OutboxEntry).where(OutboxEntry.record_id == source.id).values(record_id=target.id),
        execution_options={"synchronize_session": False},
    )


def move_notes_and_tasks(session: Session, source: Record, target: Record) -> None:
    """The source's notes and tasks (with their emails) belong to the target."""
    notes.move_notes_and_tasks(session, from_id=source.id, to_id=target.id)


MERGE_STEPS: tuple[MergeStep, ...] = (
    move_emails,
    move_domains,
    move_values,
    move_links,
    move_children,
    move_outbox,
    move_notes_and_tasks,
)

"""The outbox as its sender sees it: what is queued, retrying, failed (with the fix), sent.

A member sees the entries of their own mailboxes; an admin sees every entry of the
company (`scope="company"`), never another company's. Each entry keeps the JSON shape of
`mailroom outbox list --json` (outbox.service.entry_summary) and adds what a person needs:
the mailbox's address, `state` in words (`queued`, `retrying` — queued after a failed
attempt, with the reason and the next attempt —, `sending`, `sent`, `failed`, `held`) and
whether the viewer may retry it. `retry_send` queues a failed or held entry again and
makes one attempt at once (outbox.delivery); `dismiss_send` gives up on one (it stays
listed as `dismissed`). `failed_sends` counts the viewer's own failed
and held entries: the dashboard shows a red banner while it is not zero.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailroom.app import App
from mailroom.crm.access import Viewer
from mailroom.db.models import Mailbox
from mailroom.db.outbox_models import OutboxEntry
from mailroom.errors import BadInput, MailroomError, NotFound
from mailroom.outbox.delivery import DeliveryResult, deliver
from mailroom.outbox.service import entry_summary, release

FAILED = ("failed", "held")
MAX_LIST = 200


def state_of(entry: OutboxEntry) -> str:
    """The entry's state in words: a queued entry that already failed once is retrying."""
    if entry.status == "queued" and entry.attempts > 0:
        return "retrying"
    return entry.status


def _mine(viewer: Viewer) -> Any:
    return Mailbox.user_id == viewer.user_id


def list_sends(
    session: Session, *, viewer: Viewer, scope: str = "mine", limit: int = 100
) -> list[dict[str, Any]]:
    """The viewer's outbox (or, for an admin with `scope="company"`, the company's)."""
    if scope not in ("mine", "company"):
        raise BadInput(f"Unknown scope {scope!r}.", hint="Use mine or company.")
    if scope == "company" and not viewer.is_admin:
        raise NotFound("No company outbox for you.", hint="Only admins see everyone's sends.")
    query = (
        select(OutboxEntry, Mailbox.address, Mailbox.user_id)
        .join(Mailbox, Mailbox.id == OutboxEntry.mailbox_id)
        .where(OutboxEntry.company_id == viewer.company_id)
        .order_by(OutboxEntry.id.desc())
        .limit(max(1, min(limit, MAX_LIST)))
    )
    if scope == "mine":
        query = query.where(_mine(viewer))
    rows = []
    for entry, address, owner in session.execute(query):
        item = entry_summary(entry)
        item |= {"mailbox": address, "state": state_of(entry), "own": owner == viewer.user_id}
        item["can_retry"] = entry.status in FAILED and (owner == viewer.user_id or viewer.is_admin)
        rows.append(item)
    return rows


def entry_summary_of(entry: OutboxEntry) -> dict[str, Any]:
    """One entry as `outbox list --json` shows it, with its state in words."""
    return entry_summary(entry) | {"state": state_of(entry)}


def failed_sends(session: Session, *, viewer: Viewer) -> int:
    """How many of the viewer's own sends failed or are held for a decision."""
    count = session.scalar(
        select(func.count(OutboxEntry.id))
        .join(Mailbox, Mailbox.id == OutboxEntry.mailbox_id)
        .where(
            OutboxEntry.company_id == viewer.company_id,
            _mine(viewer),
            OutboxEntry.status.in_(FAILED),
        )
    )
    return int(count or 0)


def _own_entry(session: Session, *, viewer: Viewer, entry_id: int) -> OutboxEntry:
    """An entry of the viewer's own mailboxes (an admin: the company's); else NotFound."""
    row = session.execute(
        select(OutboxEntry, Mailbox.user_id)
        .join(Mailbox, Mailbox.id == OutboxEntry.mailbox_id)
        .where(OutboxEntry.id == entry_id, OutboxEntry.company_id == viewer.company_id)
    ).first()
    if row is None or (row[1] != viewer.user_id and not viewer.is_admin):
        raise NotFound(f"No outbox entry {entry_id}.", hint="Open the Outbox to see yours.")
    entry: OutboxEntry = row[0]
    return entry


def dismiss_send(session: Session, *, viewer: Viewer, entry_id: int) -> OutboxEntry:
    """Give up on a failed or held send (committed): it stays listed as `dismissed`, is
    never sent, and no longer keeps the red banner up."""
    entry = _own_entry(session, viewer=viewer, entry_id=entry_id)
    if entry.status not in FAILED:
        raise BadInput(
            f"Outbox entry {entry_id} is {entry.status}; only failed or held ones are dismissed."
        )
    entry.status = "dismissed"
    entry.next_attempt_at = None
    session.commit()
    return entry


def retry_send(app: App, session: Session, *, viewer: Viewer, entry_id: int) -> DeliveryResult:
    """Queue a failed or held entry of the viewer's (an admin: of the company) again and
    attempt it at once; BadInput for any other state, NotFound for anyone else's."""
    _own_entry(session, viewer=viewer, entry_id=entry_id)
    try:
        release(session, entry_id=entry_id)
        session.commit()
    except MailroomError:
        session.rollback()
        raise
    return deliver(app, entry_id)

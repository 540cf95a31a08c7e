"""A mailbox's quarantine: messages the server lists but the sync could not fetch.

One list and two actions for the CLI (`mailroom mailbox quarantine`, and `mailbox errors`),
the API (`/api/v1/mailboxes/{id}/quarantine…`) and the error-log page. The rows are
written by the sync (sync/quarantine.py has the states and why); here a person sees
them and decides: **retry** puts a message back to `retrying` with one attempt left (the
next sync fetches it by UID; it is quarantined again if that fails) and asks for a sync;
**dismiss** accepts the loss (the row stays, listed as dismissed, and the message is no
longer fetched). Access is the mailbox's: its owner and the company's admins; anyone else
gets NotFound, as for a mailbox that does not exist.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from mailroom.crm.access import Viewer
from mailroom.db.models import Mailbox, QuarantinedMessage
from mailroom.errors import NotFound
from mailroom.mailboxes.store import request_sync
from mailroom.services.lookup import load_mailbox
from mailroom.sync.quarantine import QUARANTINE_AFTER, QuarantineState

_ORDER = case(
    (QuarantinedMessage.state == QuarantineState.QUARANTINED, 0),
    (QuarantinedMessage.state == QuarantineState.RETRYING, 1),
    else_=2,
)
STATE_WORDS = {
    QuarantineState.RETRYING: "Retrying at the next sync",
    QuarantineState.QUARANTINED: "Quarantined: could not be fetched",
    QuarantineState.DISMISSED: "Dismissed",
}


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _one(row: QuarantinedMessage) -> dict[str, Any]:
    state = str(row.state)
    return {
        "id": row.id,
        "mailbox_id": row.mailbox_id,
        "folder": row.folder,
        "uidvalidity": row.uidvalidity,
        "uid": row.uid,
        "uidl": row.server_id,
        "size": row.size,
        "attempts": row.attempts,
        "state": state,
        "state_words": STATE_WORDS.get(QuarantineState(state), state),
        "first_error_at": _iso(row.first_error_at),
        "last_error_at": _iso(row.last_error_at),
        "last_error": row.last_error,
        "can_retry": state != QuarantineState.RETRYING,
        "can_dismiss": state != QuarantineState.DISMISSED,
    }


def list_quarantine(
    *, session: Session, mailbox_id: int, viewer: Viewer | None = None
) -> list[dict[str, Any]]:
    """The mailbox's messages not fetched: quarantined first, then retrying, dismissed."""
    load_mailbox(session, mailbox_id=mailbox_id, viewer=viewer)
    rows = session.scalars(
        select(QuarantinedMessage)
        .where(QuarantinedMessage.mailbox_id == mailbox_id)
        .order_by(_ORDER, QuarantinedMessage.last_error_at.desc(), QuarantinedMessage.id)
    )
    return [_one(row) for row in rows]


def quarantine_counts(session: Session, mailbox_ids: list[int]) -> dict[int, int]:
    """Mailbox id → how many of its messages are quarantined (not dismissed, not retrying)."""
    if not mailbox_ids:
        return {}
    rows = session.execute(
        select(QuarantinedMessage.mailbox_id, func.count())
        .where(
            QuarantinedMessage.mailbox_id.in_(mailbox_ids),
            QuarantinedMessage.state == QuarantineState.QUARANTINED,
        )
        .group_by(QuarantinedMessage.mailbox_id)
    )
    return {mid: int(n) for mid, n in rows}


def _row(
    session: Session, *, mailbox_id: int, quarantine_id: int, viewer: Viewer | None
) -> tuple[Mailbox, QuarantinedMessage]:
    mailbox = load_mailbox(session, mailbox_id=mailbox_id, viewer=viewer)
    row = session.get(QuarantinedMessage, quarantine_id)
    if row is None or row.mailbox_id != mailbox.id:
        raise NotFound(
            f"Mailbox {mailbox_id} has no quarantined message {quarantine_id}.",
            hint=f"List them with `mailroom mailbox quarantine {mailbox_id}`.",
        )
    return mailbox, row


def retry_message(
    *, session: Session, mailbox_id: int, quarantine_id: int, viewer: Viewer | None = None
) -> dict[str, Any]:
    """Fetch the message again at the next sync (one attempt), and ask for that sync now."""
    mailbox, row = _row(session, mailbox_id=mailbox_id, quarantine_id=quarantine_id, viewer=viewer)
    row.state = QuarantineState.RETRYING
    row.attempts = min(row.attempts, QUARANTINE_AFTER - 1)
    request_sync(session, mailbox)
    answer = _one(row)
    session.commit()
    return answer


def dismiss_message(
    *, session: Session, mailbox_id: int, quarantine_id: int, viewer: Viewer | None = None
) -> dict[str, Any]:
    """Accept the loss: the message is no longer fetched, and stays listed as dismissed."""
    _, row = _row(session, mailbox_id=mailbox_id, quarantine_id=quarantine_id, viewer=viewer)
    row.state = QuarantineState.DISMISSED
    answer = _one(row)
    session.commit()
    return answer

"""Compose and reply from the dashboard and the API: the access checks, then the outbox.

`send_message` does what `mailroom send` does (outbox.service.queue_message, commit,
outbox.delivery.deliver), after checking what only an interface knows:

- the caller sends only from a mailbox of their own (an admin manages colleagues'
  mailboxes but does not write as them);
- the record sent from (`TYPE:ID`) is of the caller's company (access.get_record), so a
  case's `[Case #N]` tag and the timeline link go to the right record;
- the message replied to is one the caller may read whole (access.get_message), and the
  reply threads under it (In-Reply-To/References, RFC 5322 §3.6.4).
Limits (recipients, size, messages per day) are refused by `queue_message` before
anything is queued, with the limit named. Once the SMTP server accepts the message,
`deliver` stores and links it before returning, so it is on the timeline at once.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy.orm import Session

from mailroom.app import App
from mailroom.crm import access
from mailroom.crm.access import Viewer
from mailroom.db.models import Mailbox, Message, Record
from mailroom.digits import is_number
from mailroom.errors import BadInput, MailroomError, NotFound
from mailroom.outbox.delivery import DeliveryResult, deliver
from mailroom.outbox.service import SendRequest, queue_message

MAX_ATTACHMENTS = 20


def split_addresses(text: str) -> list[str]:
    """`a@x, b@y; c@z` → three entries (each is validated by compose)."""
    return [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]


def own_mailboxes(session: Session, *, viewer: Viewer) -> list[Mailbox]:
    """The mailboxes the viewer may send from: their own."""
    return [
        m for m in access.visible_mailboxes(session, viewer=viewer) if m.user_id == viewer.user_id
    ]


def parse_record_ref(session: Session, *, viewer: Viewer, ref: str) -> Record:
    kind, _, ident = ref.strip().partition(":")
    if not is_number(ident) or len(ident) > 18:
        raise BadInput(f"{ref!r} is not a record reference.", hint="Use TYPE:ID, e.g. case:12.")
    return access.get_record(session, viewer=viewer, record_type=kind, record_id=int(ident))


def reply_parent(session: Session, *, viewer: Viewer, message_id: int) -> Message:
    message, level = access.get_message(session, viewer=viewer, message_id=message_id)
    if level != "everything":
        raise NotFound(f"No message {message_id}.", hint="Only people who see it whole reply.")
    return message


def send_message(
    app: App, session: Session, *, viewer: Viewer, request: SendRequest, reply_to: int | None
) -> DeliveryResult:
    """Check, queue (committed) and attempt to send at once; see the module docstring.

    `reply_to` is Mailroom's id of the message answered (the web's handle on it); the
    request's own `reply_to_message` and `record` are replaced by what the checks found.
    """
    mailbox = access.get_mailbox(session, viewer=viewer, mailbox_id=request.mailbox_id)
    if mailbox.user_id != viewer.user_id:
        raise NotFound(
            f"No mailbox {request.mailbox_id} of yours.",
            hint="Send from one of your own mailboxes.",
        )
    if not request.to:
        raise BadInput("A message needs at least one recipient.", hint="Fill in To.")
    if len(request.attachments) > MAX_ATTACHMENTS:
        raise BadInput(f"At most {MAX_ATTACHMENTS} attachments per message.")
    record = (
        parse_record_ref(session, viewer=viewer, ref=request.record) if request.record else None
    )
    parent = reply_parent(session, viewer=viewer, message_id=reply_to) if reply_to else None
    checked = replace(
        request,
        mailbox_id=mailbox.id,
        html=request.html or None,
        reply_to_message=parent.message_id if parent is not None else None,
        record=record.ref if record is not None else None,
    )
    try:
        entry_id = queue_message(session, request=checked).id
        session.commit()
    except MailroomError:
        session.rollback()
        raise
    return deliver(app, entry_id)

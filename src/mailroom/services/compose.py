"""Compose, reply, reply-all and forward: one service under the page, the API and the CLI.

`send_composed` checks what only a caller's identity decides — the caller sends only from
a mailbox of their own; the record sent from is of their company; the message answered or
forwarded is one they may read whole — then builds the body (outbox.quoting: their text,
their signature after "-- ", the quoted original), queues it (committed) and attempts to
send at once (outbox.delivery.deliver). A forward carries the original's attachments
(from the blob store) and a "Fwd:" subject; it does not thread under the original.

`compose_form` is what the compose form starts with for each mode: reply answers the
Reply-To (else the sender; for a message the user sent, its recipients), reply-all also
keeps every To and Cc, each without the user's own addresses and without duplicates.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.app import App
from mailroom.crm import access
from mailroom.crm.access import Viewer
from mailroom.db.models import Attachment, Mailbox, Message, Record, User
from mailroom.db.times import as_utc
from mailroom.digits import is_number
from mailroom.errors import BadInput, MailroomError, NotFound
from mailroom.ingest.bodies import ensure_bodies
from mailroom.mailboxes.store import get_mailbox
from mailroom.outbox.compose import FileAttachment, reply_subject
from mailroom.outbox.delivery import DeliveryResult, deliver
from mailroom.outbox.quoting import (
    MAX_SIGNATURE,
    Original,
    forward_subject,
    forward_text,
    html_body,
    quote_text,
    text_body,
)
from mailroom.outbox.service import SendRequest, find_parent, queue_message

MAX_ATTACHMENTS = 20
MODES = ("new", "reply", "reply-all", "forward")


@dataclass(frozen=True, slots=True)
class Compose:
    """How the body is made around what the user wrote (see the module docstring)."""

    reply_to: int | None = None  # Mailroom's id of the message answered
    forward_of: int | None = None  # Mailroom's id of the message forwarded
    quote: bool = False  # quote the message answered below the text
    signature: bool = True  # append the user's signature (if they have one)


def split_addresses(text: str) -> list[str]:
    """`a@x, b@y; c@z` → three entries (each is validated by compose)."""
    return [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]


def own_mailboxes(session: Session, *, viewer: Viewer) -> list[Mailbox]:
    """The mailboxes the viewer may send from: their own."""
    return [
        m for m in access.visible_mailboxes(session, viewer=viewer) if m.user_id == viewer.user_id
    ]


def parse_record_ref(session: Session, *, viewer: Viewer, ref: str) -> Record:
    """The record `TYPE:ID` as the viewer may see it; BadInput for another form."""
    kind, _, ident = ref.strip().partition(":")
    if not is_number(ident) or len(ident) > 18:
        raise BadInput(f"{ref!r} is not a record reference.", hint="Use TYPE:ID, e.g. case:12.")
    return access.get_record(session, viewer=viewer, record_type=kind, record_id=int(ident))


def readable_message(session: Session, *, viewer: Viewer, message_id: int) -> Message:
    """A message the viewer sees whole (only they answer or forward it); else NotFound."""
    message, level = access.get_message(session, viewer=viewer, message_id=message_id)
    if level != "everything":
        raise NotFound(
            f"No message {message_id}.", hint="Only people who see it whole reply or forward."
        )
    return message


def _unique(addresses: Iterable[str], *, without: Iterable[str]) -> list[str]:
    skip = {a.lower() for a in without}
    out: list[str] = []
    for address in addresses:
        key = address.strip().lower()
        if key and key not in skip:
            skip.add(key)
            out.append(address.strip())
    return out


def reply_recipients(
    message: Message, *, own: Iterable[str], reply_all: bool
) -> tuple[list[str], list[str]]:
    """(To, Cc) of a reply: see the module docstring; never one of `own`."""
    mine = {a.lower() for a in own}
    sent_by_me = message.direction == "outbound" or (message.from_address or "").lower() in mine
    if sent_by_me:
        first = list(message.to_addresses)
    else:
        first = list(message.reply_to_addresses or []) or [message.from_address or ""]
    to = _unique(first, without=mine)
    if not reply_all:
        return to, []
    if not sent_by_me:
        to = _unique([*to, *message.to_addresses], without=mine)
    cc = _unique(message.cc_addresses, without=[*mine, *to])
    return to, cc


def original_of(session: Session, app: App, message: Message) -> Original:
    """The message as a quote shows it (its bodies parsed first if not yet)."""
    ensure_bodies(session, message, app.blobs)
    return Original(
        sender=message.from_address or "",
        sender_name=message.from_name,
        date=as_utc(message.date_utc),
        subject=message.subject,
        to=tuple(message.to_addresses),
        cc=tuple(message.cc_addresses),
        text=message.text_body,
        html=message.html_body,
    )


def forwarded_attachments(session: Session, app: App, message: Message) -> list[FileAttachment]:
    """The original's attachments, from the blob store; BadInput when one is gone."""
    ensure_bodies(session, message, app.blobs)
    found = []
    rows = session.scalars(
        select(Attachment).where(Attachment.message_id == message.id).order_by(Attachment.id)
    )
    for row in rows:
        if not app.blobs.exists(row.sha256):
            raise BadInput(
                f"The attachment {row.filename} of the original is no longer stored.",
                hint="Retention removed it; attach the file yourself.",
            )
        found.append(
            FileAttachment(
                filename=row.filename, content_type=row.content_type, data=app.blobs.get(row.sha256)
            )
        )
    return found


def signature_of(session: Session, *, user_id: int) -> str:
    """The user's signature ("" for none)."""
    user = session.get(User, user_id)
    return user.signature if user is not None else ""


def set_signature(session: Session, *, viewer: Viewer, signature: str) -> str:
    """Save the viewer's own signature (committed); at most 2,000 characters."""
    text = signature.replace("\r\n", "\n").strip("\n")
    if len(text) > MAX_SIGNATURE:
        raise BadInput(
            f"The signature is {len(text)} characters long; at most {MAX_SIGNATURE}.",
            hint="Shorten it; a few lines (name, role, phone) is usual.",
        )
    if any(ord(c) < 32 and c not in "\n\t" for c in text):
        raise BadInput("The signature contains a control character.", hint="Use plain text.")
    user = session.get(User, viewer.user_id)
    assert user is not None  # the viewer is signed in
    user.signature = text
    session.commit()
    return text


def _body(
    session: Session, app: App, *, request: SendRequest, user_id: int, how: Compose,
    source: Message | None,
) -> SendRequest:  # fmt: skip
    """The request with its body made: text, signature, quoted or forwarded original."""
    signature = signature_of(session, user_id=user_id) if how.signature else ""
    forward = how.forward_of is not None
    original = original_of(session, app, source) if source and (forward or how.quote) else None
    if not signature.strip() and original is None:
        return request
    quoted = ""
    if original is not None:
        quoted = forward_text(original) if forward else quote_text(original)
    text = text_body(request.text, signature=signature, quoted=quoted)
    html = None
    if request.html or (original is not None and original.html.strip()):
        html = html_body(
            text=request.text, html=request.html, signature=signature, original=original,
            forward=forward,
        )  # fmt: skip
    return replace(request, text=text, html=html)


def _checked(
    session: Session, app: App, *, viewer: Viewer, request: SendRequest, how: Compose
) -> SendRequest:
    """The request after every access check, with its body, subject and attachments."""
    mailbox = access.get_mailbox(session, viewer=viewer, mailbox_id=request.mailbox_id)
    if mailbox.user_id != viewer.user_id:
        raise NotFound(
            f"No mailbox {request.mailbox_id} of yours.",
            hint="Send from one of your own mailboxes.",
        )
    if not (request.to or request.cc or request.bcc):
        raise BadInput("A message needs at least one recipient.", hint="Fill in To.")
    if how.reply_to is not None and how.forward_of is not None:
        raise BadInput("A message is a reply or a forward, not both.")
    record = (
        parse_record_ref(session, viewer=viewer, ref=request.record) if request.record else None
    )
    parent = (
        readable_message(session, viewer=viewer, message_id=how.reply_to) if how.reply_to else None
    )
    forwarded = (
        readable_message(session, viewer=viewer, message_id=how.forward_of)
        if how.forward_of
        else None
    )
    checked = replace(
        _forwarding(session, app, request=request, forwarded=forwarded),
        mailbox_id=mailbox.id,
        html=request.html or None,
        reply_to_message=parent.message_id if parent is not None else None,
        record=record.ref if record is not None else None,
    )
    return _body(
        session, app, request=checked, user_id=viewer.user_id, how=how, source=parent or forwarded
    )


def _forwarding(
    session: Session, app: App, *, request: SendRequest, forwarded: Message | None
) -> SendRequest:
    """With a forwarded message: its attachments added and `Fwd:` before the subject."""
    attachments = list(request.attachments)
    subject = request.subject
    if forwarded is not None:
        attachments += forwarded_attachments(session, app, forwarded)
        subject = forward_subject(subject or forwarded.subject)
    if len(attachments) > MAX_ATTACHMENTS:
        raise BadInput(f"At most {MAX_ATTACHMENTS} attachments per message.")
    return replace(request, subject=subject, attachments=attachments)


def operator_request(
    session: Session, app: App, *, request: SendRequest, forward: str | None, how: Compose
) -> SendRequest:
    """`mailroom send`'s request (the operator: no viewer) with its body made as the page
    makes it: the mailbox owner's signature, the message answered (`reply_to_message`)
    or forwarded (`forward`, a Message-ID) found in the mailbox's company."""
    mailbox = get_mailbox(session, request.mailbox_id)
    parent = (
        find_parent(session, company_id=mailbox.company_id, message_id=request.reply_to_message)
        if request.reply_to_message
        else None
    )
    forwarded = (
        find_parent(session, company_id=mailbox.company_id, message_id=forward) if forward else None
    )
    if parent is not None and forwarded is not None:
        raise BadInput("A message is a reply or a forward, not both.")
    checked = _forwarding(session, app, request=request, forwarded=forwarded)
    return _body(
        session,
        app,
        request=checked,
        user_id=mailbox.user_id,
        how=replace(how, forward_of=forwarded.id if forwarded is not None else None),
        source=parent or forwarded,
    )


def send_composed(
    app: App, session: Session, *, viewer: Viewer, request: SendRequest, how: Compose
) -> DeliveryResult:
    """Check, build, queue (committed) and attempt to send at once (module docstring).

    The request's own `reply_to_message` and `record` are replaced by what the checks
    found. A send the server refused comes back with status `failed`/`held` and its error;
    one that waits for a retry with `queued` and the reason."""
    try:
        checked = _checked(session, app, viewer=viewer, request=request, how=how)
        entry_id = queue_message(session, request=checked).id
        session.commit()
    except MailroomError:
        session.rollback()
        raise
    return deliver(app, entry_id)


def compose_form(
    session: Session,
    app: App,
    *,
    viewer: Viewer,
    mode: str = "new",
    message_id: int | None = None,
    record: str = "",
) -> dict[str, Any]:
    """What the compose form starts with: To, Cc, subject, the original, the signature."""
    if mode not in MODES:
        raise BadInput(f"Unknown compose mode {mode!r}.", hint=f"Use one of: {', '.join(MODES)}.")
    form: dict[str, Any] = {"to": "", "cc": "", "bcc": "", "subject": "", "text": "", "html": ""}
    form |= {"mode": mode, "record": "", "record_name": "", "parent": None, "quote": True}
    form |= {"reply": "", "forward": "", "quoted": "", "forward_files": []}
    form["signature"] = signature_of(session, user_id=viewer.user_id)
    if record:
        target = parse_record_ref(session, viewer=viewer, ref=record)
        form |= {"record": target.ref, "record_name": target.name}
        emails = [e.address for e in target.emails]
        form["to"] = emails[0] if emails else ""
    if mode == "new":
        return form
    if message_id is None:
        raise BadInput(f"{mode} needs the message it answers or forwards.")
    message = readable_message(session, viewer=viewer, message_id=message_id)
    original = original_of(session, app, message)
    form["parent"] = {"id": message.id, "subject": message.subject, "from": message.from_address}
    if mode == "forward":
        form |= {"forward": message.id, "to": "", "subject": forward_subject(message.subject)}
        form["quoted"] = forward_text(original)
        form["forward_files"] = _names(session, message.id)
        return form
    to, cc = reply_recipients(message, own=viewer.addresses, reply_all=mode == "reply-all")
    form |= {"reply": message.id, "to": ", ".join(to), "cc": ", ".join(cc)}
    form |= {"subject": reply_subject(message.subject), "quoted": quote_text(original)}
    return form


def _names(session: Session, message_id: int) -> Sequence[str]:
    return list(
        session.scalars(
            select(Attachment.filename)
            .where(Attachment.message_id == message_id)
            .order_by(Attachment.id)
        )
    )

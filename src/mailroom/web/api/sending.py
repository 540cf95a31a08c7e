"""`POST /api/v1/messages` (send or reply) and `POST/DELETE /api/v1/messages/{id}/links`.

Sending is `services.compose.send_composed`, the same path as the compose page: the
answer says whether the SMTP server accepted the message (`sent`, with the logged
message's `id`, already on the record's timeline) or it waits for a retry. `GET /compose`
gives what a reply, reply-all or forward starts with; `GET/PUT /account/signature` the
caller's signature.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from mailroom.crm import access
from mailroom.db.outbox_models import OutboxEntry
from mailroom.errors import BadInput, NotFound
from mailroom.matching.manual import link_by_hand, unlink_by_hand
from mailroom.outbox.compose import FileAttachment
from mailroom.outbox.service import SendRequest
from mailroom.services.compose import (
    Compose,
    compose_form,
    parse_record_ref,
    send_composed,
    set_signature,
    signature_of,
)
from mailroom.web.api.schemas import ERRORS
from mailroom.web.api.schemas_in import (
    AttachmentIn,
    LinkIn,
    LinksOut,
    SendIn,
    SentOut,
    SignatureIn,
)
from mailroom.web.deps import ApiCtx, Db, MailroomApp
from mailroom.web.present import message_view

router = APIRouter(tags=["messages"], responses=ERRORS)
MessageId = Annotated[int, Path(ge=1, le=2**62)]


def _decode(item: AttachmentIn) -> FileAttachment:
    try:
        data = base64.b64decode(item.data, validate=True)
    except (binascii.Error, ValueError):
        raise BadInput(
            f"The attachment {item.filename!r} is not valid base64.",
            hint="Send the file's bytes base64-encoded in `data`.",
        ) from None
    return FileAttachment(filename=item.filename, content_type=item.content_type, data=data)


@router.post(
    "/messages",
    response_model=SentOut,
    status_code=201,
    responses={202: {"model": SentOut, "description": "Queued: Mailroom will retry."}},
)
def send(ctx: ApiCtx, db: Db, app: MailroomApp, body: SendIn) -> Any:
    """Send (or, with `reply_to`, answer) a message from one of your mailboxes."""
    request = SendRequest(
        mailbox_id=body.mailbox_id,
        to=body.to,
        cc=body.cc,
        bcc=body.bcc,
        subject=body.subject,
        text=body.text,
        html=body.html,
        attachments=[_decode(a) for a in body.attachments],
        record=body.record,
    )
    how = Compose(
        reply_to=body.reply_to,
        forward_of=body.forward_of,
        quote=body.quote,
        signature=body.signature,
    )
    result = send_composed(app, db, viewer=ctx.viewer, request=request, how=how)
    if result.status not in ("sent", "queued") and result.error is not None:
        raise result.error
    db.expire_all()
    entry = db.get(OutboxEntry, result.entry_id)
    answer = {
        "entry_id": result.entry_id,
        "message_id": result.message_id,
        "status": result.status,
        "message": entry.stored_message_id if entry else None,
        "note": result.copy_note or (result.error.message if result.error else None),
    }
    return JSONResponse(answer, status_code=201 if result.status == "sent" else 202)


def _linkable(ctx: ApiCtx, db: Db, message_id: int, ref: str) -> tuple[Any, Any]:
    message, level = access.get_message(db, viewer=ctx.viewer, message_id=message_id)
    if level != "everything":
        raise NotFound(f"No message {message_id}.", hint="Only people who see it whole link it.")
    return message, parse_record_ref(db, viewer=ctx.viewer, ref=ref)


def _links(db: Db, ctx: ApiCtx, message_id: int) -> dict[str, Any]:
    message, level = access.get_message(db, viewer=ctx.viewer, message_id=message_id)
    view = message_view(db, message, level=level, images=False)
    return {"message": message.id, "records": view["records"]}


@router.post("/messages/{message_id}/links", response_model=LinksOut)
def link(ctx: ApiCtx, db: Db, message_id: MessageId, body: LinkIn) -> dict[str, Any]:
    """Link the message to a record by hand (reason `manual`; no sync removes it)."""
    message, record = _linkable(ctx, db, message_id, body.record)
    link_by_hand(db, message=message, record=record)
    db.commit()
    return _links(db, ctx, message_id)


@router.delete("/messages/{message_id}/links", response_model=LinksOut)
def unlink(
    ctx: ApiCtx,
    db: Db,
    message_id: MessageId,
    record: Annotated[str, Query(max_length=40, description="TYPE:ID to unlink.")],
) -> dict[str, Any]:
    """Remove a link; no sync, rule or retro-linking adds it again."""
    message, target = _linkable(ctx, db, message_id, record)
    unlink_by_hand(db, message=message, record=target)
    db.commit()
    return _links(db, ctx, message_id)


@router.get("/compose")
def compose_start(
    ctx: ApiCtx,
    db: Db,
    app: MailroomApp,
    mode: Annotated[str, Query(pattern="^(new|reply|reply-all|forward)$")] = "new",
    message: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> dict[str, Any]:
    """What a new message, reply, reply-all or forward starts with: `to`, `cc`, `subject`,
    the quoted original (`quoted`) and the attachments a forward carries."""
    form = compose_form(db, app, viewer=ctx.viewer, mode=mode, message_id=message)
    return {
        "mode": mode,
        "to": [a for a in form["to"].split(", ") if a],
        "cc": [a for a in form["cc"].split(", ") if a],
        "subject": form["subject"],
        "quoted": form["quoted"],
        "reply_to": form["reply"] or None,
        "forward_of": form["forward"] or None,
        "forward_attachments": list(form["forward_files"]),
        "signature": form["signature"],
    }


@router.get("/account/signature", tags=["account"])
def get_signature(ctx: ApiCtx, db: Db) -> dict[str, str]:
    """Your signature, appended below what you write after a `-- ` line."""
    return {"signature": signature_of(db, user_id=ctx.viewer.user_id)}


@router.put("/account/signature", tags=["account"])
def put_signature(ctx: ApiCtx, db: Db, body: SignatureIn) -> dict[str, str]:
    """Set your signature (plain text, at most 2,000 characters; empty for none)."""
    return {"signature": set_signature(db, viewer=ctx.viewer, signature=body.signature)}

"""Compose and reply: the form (from a record page, or "Reply" on a message) and sending.

Sending goes through web.sending (the same outbox services as `mailroom send`). On
success the browser returns to the record (or the message replied to), where the sent
message is already on the timeline; on any error the form comes back filled in, with the
error and its fix, and nothing was queued.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from mailroom.digits import is_number
from mailroom.errors import BadInput, MailroomError
from mailroom.outbox.compose import FileAttachment
from mailroom.outbox.service import SendRequest
from mailroom.web.deps import Csrf, Db, MailroomApp, PageCtx
from mailroom.web.sending import (
    own_mailboxes,
    parse_record_ref,
    reply_parent,
    send_message,
    split_addresses,
)
from mailroom.web.templating import render

router = APIRouter()
MAX_UPLOAD = 30 * 1024 * 1024


def _form(request: Request, ctx: PageCtx, db: Db, form: dict[str, Any], **values: Any) -> Response:
    return render(
        request,
        "compose.html",
        ctx,
        nav="records",
        form=form,
        mailboxes=own_mailboxes(db, viewer=ctx.viewer),
        **{"error": None, "status_code": 200, **values},
    )


@router.get("/compose")
def compose_page(
    request: Request,
    ctx: PageCtx,
    db: Db,
    record: Annotated[str, Query(max_length=40)] = "",
    reply: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> Response:
    form: dict[str, Any] = {"to": "", "cc": "", "bcc": "", "subject": "", "text": "", "html": ""}
    form |= {"record": "", "reply": reply or "", "record_name": "", "parent": None}
    if record:
        target = parse_record_ref(db, viewer=ctx.viewer, ref=record)
        form |= {"record": target.ref, "record_name": target.name}
        emails = [e.address for e in target.emails]
        form["to"] = emails[0] if emails else ""
    if reply:
        parent = reply_parent(db, viewer=ctx.viewer, message_id=reply)
        own = ctx.viewer.addresses
        if parent.direction == "outbound" or parent.from_address in own:
            answer_to = [a for a in parent.to_addresses if a not in own]
        else:
            answer_to = list(parent.reply_to_addresses or []) or [parent.from_address or ""]
        form |= {"to": ", ".join(a for a in answer_to if a), "subject": parent.subject}
        form["parent"] = {"id": parent.id, "subject": parent.subject, "from": parent.from_address}
    return _form(request, ctx, db, form)


async def _attachments(files: list[UploadFile] | None) -> list[FileAttachment]:
    found = []
    for upload in files or []:
        if not upload.filename:
            continue  # the empty file input of a form sent without attachments
        data = await upload.read(MAX_UPLOAD + 1)
        if len(data) > MAX_UPLOAD:
            raise BadInput(
                f"The attachment {upload.filename} is larger than 30 MB.",
                hint="Share big files by link instead.",
            )
        found.append(
            FileAttachment(
                filename=upload.filename,
                content_type=upload.content_type or "application/octet-stream",
                data=data,
            )
        )
    return found


Text = Annotated[str, Form(max_length=100_000)]


@router.post("/compose")
async def send_route(
    request: Request,
    ctx: Csrf,
    db: Db,
    app: MailroomApp,
    mailbox: Annotated[int, Form(ge=1, le=2**62)],
    to: Text,
    subject: Annotated[str, Form(max_length=998)] = "",
    text: Annotated[str, Form(max_length=1_000_000)] = "",
    html: Annotated[str, Form(max_length=2_000_000)] = "",
    cc: Text = "",
    bcc: Text = "",
    record: Annotated[str, Form(max_length=40)] = "",
    reply: Annotated[str, Form(max_length=20)] = "",
    attachment: Annotated[list[UploadFile] | None, Form()] = None,
) -> Response:
    form: dict[str, Any] = {"to": to, "cc": cc, "bcc": bcc, "subject": subject}
    form |= {
        "text": text,
        "html": html,
        "record": record,
        "reply": reply,
        "record_name": "",
        "parent": None,
    }
    form["mailbox"] = mailbox
    try:
        if reply and not is_number(reply):
            raise BadInput("The message replied to is not a message id.")
        send_request = SendRequest(
            mailbox_id=mailbox,
            to=split_addresses(to),
            cc=split_addresses(cc),
            bcc=split_addresses(bcc),
            subject=subject,
            text=text,
            html=html.strip() or None,
            attachments=await _attachments(attachment),
            record=record or None,
        )
        reply_to = int(reply) if reply else None
        result = send_message(app, db, viewer=ctx.viewer, request=send_request, reply_to=reply_to)
    except MailroomError as exc:
        db.rollback()
        return _form(request, ctx, db, form, error=exc, status_code=422)
    if result.status not in ("sent", "queued"):
        error = result.error or MailroomError(f"The message is {result.status}.")
        return _form(request, ctx, db, form, error=error, status_code=422)
    notice = "sent" if result.status == "sent" else "queued"
    if record:
        kind, _, ident = record.partition(":")
        return RedirectResponse(f"/records/{kind}/{ident}?notice={notice}", status_code=303)
    if reply:
        return RedirectResponse(f"/messages/{reply}?notice={notice}", status_code=303)
    return RedirectResponse(f"/records?notice={notice}", status_code=303)

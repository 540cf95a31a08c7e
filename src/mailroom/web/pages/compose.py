"""Compose, reply, reply-all and forward: the form and sending (services.compose).

`GET /compose?mode=reply|reply-all|forward&message=ID` starts the form from a message
(`?reply=ID` is the older form of `mode=reply`); `?record=TYPE:ID` from a record. On
success the browser returns to the record (or the message answered), where the sent
message is already on the timeline. A send the server refused comes back as the filled-in
form with the error (red); one that waits for a retry goes to the Outbox page with a red
notice and the reason — never a green banner for mail that did not go.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from mailroom.digits import is_number
from mailroom.errors import BadInput, MailroomError
from mailroom.outbox.compose import FileAttachment
from mailroom.outbox.service import SendRequest
from mailroom.services.addressbook import suggestions
from mailroom.services.compose import (
    Compose,
    compose_form,
    own_mailboxes,
    send_composed,
    signature_of,
    split_addresses,
)
from mailroom.web.deps import Csrf, Db, MailroomApp, PageCtx
from mailroom.web.templating import render

router = APIRouter()
MAX_UPLOAD = 30 * 1024 * 1024
TITLES = {"new": "New email", "reply": "Reply", "reply-all": "Reply all", "forward": "Forward"}


def _form(request: Request, ctx: PageCtx, db: Db, form: dict[str, Any], **values: Any) -> Response:
    return render(
        request,
        "compose.html",
        ctx,
        nav="records",
        form=form,
        title=TITLES.get(form.get("mode", "new"), "New email"),
        mailboxes=own_mailboxes(db, viewer=ctx.viewer),
        addressbook=suggestions(db, viewer=ctx.viewer, query="", limit=20),
        **{"error": None, "status_code": 200, **values},
    )


@router.get("/compose/addressbook")
def addressbook_json(
    ctx: PageCtx, db: Db, q: Annotated[str, Query(max_length=200)] = ""
) -> dict[str, Any]:
    """The compose form's suggestions for what is typed (the page's form of
    `GET /api/v1/addressbook`, with the session cookie)."""
    return {"items": suggestions(db, viewer=ctx.viewer, query=q)}


@router.get("/compose")
def compose_page(
    request: Request,
    ctx: PageCtx,
    db: Db,
    app: MailroomApp,
    record: Annotated[str, Query(max_length=40)] = "",
    reply: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    mode: Annotated[str, Query(pattern="^(new|reply|reply-all|forward)$")] = "new",
    message: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> Response:
    if reply is not None and message is None:
        mode, message = "reply", reply
    form = compose_form(db, app, viewer=ctx.viewer, mode=mode, message_id=message, record=record)
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
Ref = Annotated[str, Form(max_length=20)]


def _message_ref(value: str, what: str) -> int | None:
    if not value:
        return None
    if not is_number(value) or len(value) > 18:
        raise BadInput(f"The message {what} is not a message id.")
    return int(value)


def _where_next(record: str, reply: str, forward: str, notice: str) -> str:
    if record:
        kind, _, ident = record.partition(":")
        return f"/records/{kind}/{ident}?notice={notice}"
    if reply or forward:
        return f"/messages/{reply or forward}?notice={notice}"
    return f"/records?notice={notice}"


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
    reply: Ref = "",
    forward: Ref = "",
    mode: Annotated[str, Form(max_length=10)] = "new",
    quote: Annotated[bool, Form()] = False,
    signature: Annotated[bool, Form()] = False,
    attachment: Annotated[list[UploadFile] | None, Form()] = None,
) -> Response:
    form: dict[str, Any] = {"to": to, "cc": cc, "bcc": bcc, "subject": subject, "text": text}
    form |= {"html": html, "record": record, "reply": reply, "forward": forward, "mode": mode}
    form |= {"record_name": "", "parent": None, "quote": quote, "quoted": "", "mailbox": mailbox}
    form |= {"forward_files": [], "use_signature": signature}
    form["signature"] = signature_of(db, user_id=ctx.viewer.user_id)
    try:
        how = Compose(
            reply_to=_message_ref(reply, "replied to"),
            forward_of=_message_ref(forward, "forwarded"),
            quote=quote,
            signature=signature,
        )
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
        result = send_composed(app, db, viewer=ctx.viewer, request=send_request, how=how)
    except MailroomError as exc:
        db.rollback()
        return _form(request, ctx, db, form, error=exc, status_code=422)
    if result.status == "queued":
        return RedirectResponse(f"/outbox?notice=send-retrying#entry-{result.entry_id}", 303)
    if result.status != "sent":
        error = result.error or MailroomError(f"The message is {result.status}.")
        return _form(request, ctx, db, form, error=error, status_code=422, failed=result)
    return RedirectResponse(_where_next(record, reply, forward, "sent"), status_code=303)

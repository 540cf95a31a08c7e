"""The message view: headers, links (add/remove by hand), attachments, and the body frame.

The body is served by its own route with `frame_csp()` (sandbox, `default-src 'none'`,
remote images only after "Show remote images"; inline `cid:` images always, from the
message's own bytes as `data:` URIs) and shown in
`<iframe sandbox="allow-popups allow-popups-to-escape-sandbox">` — never `allow-scripts`,
never `allow-same-origin` — so a script that got past nh3 still cannot run or reach the
dashboard. Attachments download with `Content-Disposition: attachment` and `nosniff`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from mailroom.crm import access
from mailroom.db.models import Message, MessageLink, Record
from mailroom.digits import is_number
from mailroom.errors import BadInput, NotFound
from mailroom.ingest.bodies import ensure_bodies, inline_images
from mailroom.mail.html import SafeHtml, frame_csp, frame_document, text_document
from mailroom.matching.manual import link_by_hand, unlink_by_hand
from mailroom.web.api.messages import attachment_response
from mailroom.web.deps import Csrf, Db, MailroomApp, PageCtx
from mailroom.web.present import label_name, message_view
from mailroom.web.templating import render

router = APIRouter()


def _readable(ctx: PageCtx, db: Db, app: MailroomApp, message_id: int) -> tuple[Message, str]:
    """The message the viewer may see and the viewer's access level; synced mail has its
    bodies parsed here, on first read."""
    message, level = access.get_message(db, viewer=ctx.viewer, message_id=message_id)
    ensure_bodies(db, message, app.blobs, commit=True)
    return message, level


@router.get("/messages/{message_id}")
def message_page(
    request: Request,
    ctx: PageCtx,
    db: Db,
    app: MailroomApp,
    message_id: int,
    images: Annotated[bool, Query()] = False,
    find: Annotated[str, Query(max_length=320)] = "",
) -> Response:
    message, level = _readable(ctx, db, app, message_id)
    view = message_view(db, message, level=level, images=images, base="")
    found = (
        access.search_records(db, viewer=ctx.viewer, q=find, limit=20)
        if find.strip() and level == "everything"
        else []
    )
    return render(
        request,
        "message.html",
        ctx,
        nav="records",
        m=view,
        labels=[label_name(label) for label in view["labels"]],
        images=images,
        has_html=bool(message.html_body),
        linked=linked_records(db, message.id),
        find=find,
        found=[r for r in found if r.ref not in view["records"]],
        reply_to=list(message.reply_to_addresses),
    )


def linked_records(db: Db, message_id: int) -> list[tuple[Record, str]]:
    """The records the message is linked to, with the reason, in the order linked."""
    rows = db.execute(
        select(Record, MessageLink.reason)
        .join(MessageLink, MessageLink.record_id == Record.id)
        .where(MessageLink.message_id == message_id)
        .order_by(MessageLink.id)
    )
    return [(record, reason) for record, reason in rows]


@router.get("/messages/{message_id}/body")
def message_body(
    ctx: PageCtx,
    db: Db,
    app: MailroomApp,
    message_id: int,
    images: Annotated[bool, Query()] = False,
) -> Response:
    message, level = _readable(ctx, db, app, message_id)
    inline = inline_images(message, app.blobs) if level == "everything" else {}
    view = message_view(db, message, level=level, images=images, inline=inline)
    title = view["subject"] or "Message"
    if level != "everything":
        document = text_document("The owner of this mailbox shares only its subject.", title=title)
    elif view["html"]:
        document = frame_document(
            SafeHtml(html=view["html"], blocked_images=view["blocked_images"]), title=title
        )
    else:
        document = text_document(view["text"], title=title)
    return HTMLResponse(
        document,
        headers={
            "Content-Security-Policy": frame_csp(allow_remote_images=images),
            "Referrer-Policy": "no-referrer",
        },
    )


@router.get("/messages/{message_id}/attachments/{attachment_id}")
def attachment(
    ctx: PageCtx, db: Db, app: MailroomApp, message_id: int, attachment_id: int
) -> Response:
    found = access.get_attachment(
        db, viewer=ctx.viewer, message_id=message_id, attachment_id=attachment_id
    )
    return attachment_response(app.blobs.get(found.sha256), found.filename)


def _linkable(
    db: Db, ctx: PageCtx, message_id: int, record_type: str, record_id: int
) -> tuple[Message, Record]:
    """The message (the viewer must see all of it) and a record of the viewer's company."""
    message, level = access.get_message(db, viewer=ctx.viewer, message_id=message_id)
    if level != "everything":
        raise NotFound(f"No message {message_id}.", hint="Only people who see it whole link it.")
    record = access.get_record(db, viewer=ctx.viewer, record_type=record_type, record_id=record_id)
    return message, record


@router.post("/messages/{message_id}/links")
def link(
    ctx: Csrf, db: Db, message_id: int, record: Annotated[str, Form(max_length=40)]
) -> Response:
    kind, _, ident = record.strip().partition(":")
    if not is_number(ident) or len(ident) > 18:
        raise BadInput(
            f"{record!r} is not a record reference.", hint="Use TYPE:ID, e.g. contact:12."
        )
    message, target = _linkable(db, ctx, message_id, kind, int(ident))
    link_by_hand(db, message=message, record=target)
    db.commit()
    return RedirectResponse(f"/messages/{message_id}", status_code=303)


@router.post("/messages/{message_id}/links/{type}/{id}/remove")
def unlink(ctx: Csrf, db: Db, message_id: int, type: str, id: int) -> Response:
    message, target = _linkable(db, ctx, message_id, type, id)
    unlink_by_hand(db, message=message, record=target)
    db.commit()
    return RedirectResponse(f"/messages/{message_id}", status_code=303)

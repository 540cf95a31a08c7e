"""`/api/v1/messages…`: one message as the caller may see it, and its attachments."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from mailroom.crm import access
from mailroom.db.models import Message
from mailroom.ingest.bodies import ensure_bodies
from mailroom.services.messages import find_message as find_visible_message
from mailroom.web.api.schemas import ERRORS, MessageOut
from mailroom.web.deps import ApiCtx, Db, MailroomApp
from mailroom.web.present import message_view

router = APIRouter(tags=["messages"], responses=ERRORS)


def find_message(ctx: ApiCtx, db: Db, ref: str) -> tuple[Message, str]:
    """A message by its Mailroom id (digits) or its Message-ID (with or without <>)."""
    return find_visible_message(session=db, ref=ref, viewer=ctx.viewer)


@router.get("/messages/{message_id}", response_model=MessageOut)
def get_message(
    ctx: ApiCtx,
    db: Db,
    app: MailroomApp,
    message_id: Annotated[str, Path(max_length=1000, description="The id or the Message-ID.")],
    images: Annotated[bool, Query(description="Let remote images through.")] = False,
) -> dict[str, Any]:
    """The message: headers, text, sanitised HTML, attachments (as your access allows)."""
    message, level = find_message(ctx, db, message_id)
    ensure_bodies(db, message, app.blobs, commit=True)  # synced mail: bodies parsed on read
    return message_view(db, message, level=level, images=images)


@router.get(
    "/messages/{message_id}/attachments/{attachment_id}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def get_attachment(
    ctx: ApiCtx,
    db: Db,
    app: MailroomApp,
    message_id: Annotated[int, Path(ge=1, le=2**62)],
    attachment_id: Annotated[int, Path(ge=1, le=2**62)],
) -> Response:
    """An attachment's bytes, as a download."""
    attachment = access.get_attachment(
        db, viewer=ctx.viewer, message_id=message_id, attachment_id=attachment_id
    )
    return attachment_response(app.blobs.get(attachment.sha256), attachment.filename)


def attachment_response(data: bytes, filename: str) -> Response:
    """Bytes as a download that no browser will render or sniff (it is untrusted mail)."""
    from urllib.parse import quote

    return Response(
        data,
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename or 'file')}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )

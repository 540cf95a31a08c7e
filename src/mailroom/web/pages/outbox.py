"""The Outbox page: the signed-in user's sends (an admin may switch to the company's),
each with its state — queued, retrying with the reason and the next attempt, failed with
the fix and a Retry button, held, sent (services.outbox)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from mailroom.errors import BadInput
from mailroom.services.outbox import dismiss_send, list_sends, retry_send
from mailroom.web.deps import Csrf, Db, MailroomApp, PageCtx
from mailroom.web.templating import render

router = APIRouter()


@router.get("/outbox")
def outbox_page(
    request: Request,
    ctx: PageCtx,
    db: Db,
    scope: Annotated[str, Query(pattern="^(mine|company)$")] = "mine",
) -> Response:
    """The outbox as the viewer may see it."""
    chosen = scope if ctx.viewer.is_admin else "mine"
    return render(
        request,
        "outbox.html",
        ctx,
        nav="outbox",
        scope=chosen,
        entries=list_sends(db, viewer=ctx.viewer, scope=chosen),
        error=None,
    )


@router.post("/outbox/{entry_id}/retry")
def retry_page(request: Request, ctx: Csrf, db: Db, app: MailroomApp, entry_id: int) -> Response:
    """Retry a failed or held send now; back to the Outbox with the outcome."""
    try:
        result = retry_send(app, db, viewer=ctx.viewer, entry_id=entry_id)
    except BadInput as exc:  # not failed or held; anyone else's entry is a 404
        db.rollback()
        return render(
            request,
            "outbox.html",
            ctx,
            nav="outbox",
            scope="mine",
            entries=list_sends(db, viewer=ctx.viewer, scope="mine"),
            error=exc,
            status_code=422,
        )
    notice = "retry-sent" if result.status == "sent" else "retry-waiting"
    return RedirectResponse(f"/outbox?notice={notice}#entry-{entry_id}", status_code=303)


@router.post("/outbox/{entry_id}/dismiss")
def dismiss_page(request: Request, ctx: Csrf, db: Db, entry_id: int) -> Response:
    """Give up on a failed send: it stays listed, the red banner goes."""
    try:
        dismiss_send(db, viewer=ctx.viewer, entry_id=entry_id)
    except BadInput as exc:
        db.rollback()
        return render(
            request,
            "outbox.html",
            ctx,
            nav="outbox",
            scope="mine",
            entries=list_sends(db, viewer=ctx.viewer, scope="mine"),
            error=exc,
            status_code=422,
        )
    return RedirectResponse(f"/outbox?notice=send-dismissed#entry-{entry_id}", status_code=303)

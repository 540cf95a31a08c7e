"""Say what was filtered, on the dashboard (services.filtered_mail).

- the record page's note (loaded by htmx from its own include, `_filtered_mail.html`):
  how many of the record's messages were skipped, per reason, and how many its timeline
  hides by privacy; the full list with why each was skipped at `/records/{type}/{id}/filtered`;
- after blocking an address or @domain, the offer to remove the mail it already logged
  (`/admin/blocklist/logged`): the count first, then the removal on a second click.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from mailroom.crm import access
from mailroom.services.filtered_mail import (
    blocked_logged,
    filtered_for_record,
    filtered_messages,
    remove_blocked_logged,
)
from mailroom.web.deps import Csrf, Db, PageCtx
from mailroom.web.templating import is_htmx, render

router = APIRouter()
Entry = Annotated[str, Query(max_length=320)]


@router.get("/records/{type}/{id}/filtered-note")
def filtered_note(request: Request, ctx: PageCtx, db: Db, type: str, id: int) -> Response:
    """The record page's "not on this timeline" note (empty when nothing was filtered)."""
    record = access.get_record(db, viewer=ctx.viewer, record_type=type, record_id=id)
    summary = filtered_for_record(db, viewer=ctx.viewer, record=record)
    return render(request, "_filtered_note.html", ctx, record=record, summary=summary)


@router.get("/records/{type}/{id}/filtered")
def filtered_page(request: Request, ctx: PageCtx, db: Db, type: str, id: int) -> Response:
    """The record's skipped messages, newest first, each with why it was skipped."""
    record = access.get_record(db, viewer=ctx.viewer, record_type=type, record_id=id)
    return render(
        request,
        "record_filtered.html",
        ctx,
        nav="records",
        record=record,
        summary=filtered_for_record(db, viewer=ctx.viewer, record=record),
        messages=filtered_messages(db, viewer=ctx.viewer, record=record),
    )


@router.get("/admin/blocklist/logged")
def blocked_offer(
    request: Request, ctx: PageCtx, db: Db, entry: Entry, user: Entry = ""
) -> Response:
    """After blocking: how many logged messages the entry concerns, and the offer."""
    count = blocked_logged(db, viewer=ctx.viewer, entry=entry, user_email=user or None)
    template = "_blocked_offer_card.html" if is_htmx(request) else "admin_blocked_logged.html"
    return render(request, template, ctx, nav="admin", entry=entry, user=user, count=count)


@router.post("/admin/blocklist/logged")
def blocked_remove(
    ctx: Csrf,
    db: Db,
    entry: Annotated[str, Form(max_length=320)],
    user: Annotated[str, Form(max_length=320)] = "",
) -> Response:
    """Remove the mail the entry already logged from the timelines (hand-made links stay)."""
    removed = remove_blocked_logged(db, viewer=ctx.viewer, entry=entry, user_email=user or None)
    db.commit()
    query = urlencode({"entry": entry, "user": user, "removed": removed})
    return RedirectResponse(f"/admin/blocklist/logged?{query}", status_code=303)

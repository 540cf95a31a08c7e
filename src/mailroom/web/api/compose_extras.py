"""`GET /api/v1/outbox`, `POST /api/v1/outbox/{id}/retry`, `GET /api/v1/addressbook` and
`GET|PUT /api/v1/mailboxes/{id}/feeds` (issue 13 items 8 and 11), over services.outbox,
services.addressbook and services.mailbox_feeds."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from pydantic import Field

from mailroom.services.addressbook import MAX_SUGGESTIONS, suggestions
from mailroom.services.mailbox_feeds import change_mailbox_feeds, mailbox_feeds
from mailroom.services.outbox import dismiss_send, entry_summary_of, list_sends, retry_send
from mailroom.web.api.schemas import ERRORS
from mailroom.web.api.schemas_in import Strict
from mailroom.web.deps import ApiCtx, Db, MailroomApp

router = APIRouter(responses=ERRORS)
Id = Annotated[int, Path(ge=1, le=2**62)]


class FeedsIn(Strict):
    """The record types a mailbox's mail may link to."""

    feeds: list[str] = Field(
        min_length=1,
        max_length=5,
        description='["all"] or some of lead, contact, account, case, opportunity.',
    )


@router.get("/outbox", tags=["messages"])
def outbox(
    ctx: ApiCtx,
    db: Db,
    scope: Annotated[str | None, Query(pattern="^(mine|company)$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
) -> dict[str, Any]:
    """Your sends, newest first: queued, retrying (with the reason and the next attempt),
    failed (with the fix), held, sent. An admin sees the company's unless `scope=mine`."""
    chosen = scope or ("company" if ctx.viewer.is_admin else "mine")
    return {"items": list_sends(db, viewer=ctx.viewer, scope=chosen, limit=limit)}


@router.post("/outbox/{entry_id}/retry", tags=["messages"])
def retry(ctx: ApiCtx, db: Db, app: MailroomApp, entry_id: Id) -> Any:
    """Send a failed or held message again now; 200 when sent, 202 when it waits."""
    result = retry_send(app, db, viewer=ctx.viewer, entry_id=entry_id)
    answer = {
        "entry_id": result.entry_id,
        "status": result.status,
        "error": result.error.message if result.error else None,
        "hint": result.error.hint if result.error else None,
    }
    return JSONResponse(answer, status_code=200 if result.status == "sent" else 202)


@router.post("/outbox/{entry_id}/dismiss", tags=["messages"])
def dismiss(ctx: ApiCtx, db: Db, entry_id: Id) -> dict[str, Any]:
    """Give up on a failed or held send: listed as `dismissed`, never sent."""
    return entry_summary_of(dismiss_send(db, viewer=ctx.viewer, entry_id=entry_id))


@router.get("/addressbook", tags=["records"])
def addressbook(
    ctx: ApiCtx,
    db: Db,
    q: Annotated[str, Query(max_length=200)] = "",
    limit: Annotated[int, Query(ge=1, le=MAX_SUGGESTIONS)] = MAX_SUGGESTIONS,
) -> dict[str, Any]:
    """Addresses for To/Cc: the company's records' first, then recent correspondents of
    mail you may see (strict privacy respected); at most 20."""
    return {"items": suggestions(db, viewer=ctx.viewer, query=q, limit=limit)}


@router.get("/mailboxes/{mailbox_id}/feeds", tags=["mailboxes"])
def get_feeds(ctx: ApiCtx, db: Db, mailbox_id: Id) -> dict[str, Any]:
    """The record types this mailbox's mail may link to (default: all)."""
    return {"feeds": mailbox_feeds(session=db, mailbox_id=mailbox_id, viewer=ctx.viewer)}


@router.put("/mailboxes/{mailbox_id}/feeds", tags=["mailboxes"])
def put_feeds(ctx: ApiCtx, db: Db, mailbox_id: Id, body: FeedsIn) -> dict[str, Any]:
    """Choose the record types this mailbox's mail may link to, from now on."""
    fed = change_mailbox_feeds(
        session=db, mailbox_id=mailbox_id, feeds=body.feeds, viewer=ctx.viewer
    )
    return {"feeds": fed}

"""`/api/v1/mailboxes…`: the caller's visible mailboxes, their error log, "sync now"."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from mailroom.services.mailboxes import (
    approve_alias,
    error_log,
    get_mailbox_json,
    list_mailbox_json,
    sync_now,
)
from mailroom.web.api.schemas import ERRORS, MailboxErrorOut, MailboxOut, Page, SyncQueued
from mailroom.web.api.schemas_in import AliasIn
from mailroom.web.deps import ApiCtx, Db, MailroomApp

router = APIRouter(tags=["mailboxes"], responses=ERRORS)
MailboxId = Annotated[int, Path(ge=1, le=2**62)]


@router.get("/mailboxes", response_model=Page[MailboxOut])
def list_mailboxes(ctx: ApiCtx, db: Db) -> dict[str, Any]:
    """Your mailboxes (an admin: every mailbox of the company) with status and last error."""
    return {"items": list_mailbox_json(session=db, viewer=ctx.viewer), "next": None}


@router.get("/mailboxes/{id}", response_model=MailboxOut)
def get_mailbox(ctx: ApiCtx, db: Db, id: MailboxId) -> dict[str, Any]:
    return get_mailbox_json(session=db, mailbox_id=id, viewer=ctx.viewer)


@router.get("/mailboxes/{id}/errors", response_model=Page[MailboxErrorOut])
def get_errors(ctx: ApiCtx, db: Db, id: MailboxId) -> dict[str, Any]:
    """The mailbox's error log, newest first, each with its fix."""
    return {"items": error_log(session=db, mailbox_id=id, viewer=ctx.viewer), "next": None}


@router.post("/mailboxes/{id}/sync", response_model=SyncQueued, status_code=202)
def sync(ctx: ApiCtx, db: Db, app: MailroomApp, id: MailboxId) -> dict[str, Any]:
    """Start syncing the mailbox now (PostgreSQL: queue it for the workers at high
    priority, status `queued`); poll `GET /mailboxes/{id}` for its status."""
    sync_now(session=db, app=app, mailbox_id=id, viewer=ctx.viewer, here=True)
    return {"mailbox_id": id, "status": "syncing" if app.settings.is_sqlite else "queued"}


@router.post("/mailboxes/{id}/aliases/approve", response_model=MailboxOut)
def approve(ctx: ApiCtx, db: Db, id: MailboxId, body: AliasIn) -> dict[str, Any]:
    """Approve a pending alias (admins): only then does it count as the owner's address."""
    approve_alias(session=db, mailbox_id=id, address=body.address, viewer=ctx.viewer)
    return get_mailbox_json(session=db, mailbox_id=id, viewer=ctx.viewer)

"""`/api/v1/mailboxes…`: the caller's visible mailboxes, their error log, "sync now"."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from mailroom.crm import access
from mailroom.web.api.schemas import ERRORS, MailboxErrorOut, MailboxOut, Page, SyncQueued
from mailroom.web.deps import ApiCtx, Db, MailroomApp
from mailroom.web.present import error_log, mailbox_views
from mailroom.web.tasks import start_sync

router = APIRouter(tags=["mailboxes"], responses=ERRORS)
MailboxId = Annotated[int, Path(ge=1, le=2**62)]


@router.get("/mailboxes", response_model=Page[MailboxOut])
def list_mailboxes(ctx: ApiCtx, db: Db) -> dict[str, Any]:
    """Your mailboxes (an admin: every mailbox of the company) with status and last error."""
    return {
        "items": mailbox_views(db, access.visible_mailboxes(db, viewer=ctx.viewer)),
        "next": None,
    }


@router.get("/mailboxes/{id}", response_model=MailboxOut)
def get_mailbox(ctx: ApiCtx, db: Db, id: MailboxId) -> dict[str, Any]:
    mailbox = access.get_mailbox(db, viewer=ctx.viewer, mailbox_id=id)
    return mailbox_views(db, [mailbox])[0]


@router.get("/mailboxes/{id}/errors", response_model=Page[MailboxErrorOut])
def get_errors(ctx: ApiCtx, db: Db, id: MailboxId) -> dict[str, Any]:
    """The mailbox's error log, newest first, each with its fix."""
    mailbox = access.get_mailbox(db, viewer=ctx.viewer, mailbox_id=id)
    return {"items": error_log(db, mailbox), "next": None}


@router.post("/mailboxes/{id}/sync", response_model=SyncQueued, status_code=202)
def sync_now(ctx: ApiCtx, db: Db, app: MailroomApp, id: MailboxId) -> dict[str, Any]:
    """Start syncing the mailbox now; poll `GET /mailboxes/{id}` for its status."""
    mailbox_id = access.get_mailbox(db, viewer=ctx.viewer, mailbox_id=id).id
    db.rollback()  # end this request's transaction (SQLite: its lock) before the sync writes
    start_sync(app, mailbox_id)
    return {"mailbox_id": mailbox_id, "status": "syncing"}

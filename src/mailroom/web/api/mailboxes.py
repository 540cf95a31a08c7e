"""`/api/v1/mailboxes…`: the caller's visible mailboxes, their error log, "sync now",
the quarantine (messages the server lists but the sync could not fetch) and the
aliases (approve, reject, send the confirmation again)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from mailroom.services.aliases import approve_alias, reject_alias, resend_confirmation
from mailroom.services.mailboxes import (
    error_log,
    get_mailbox_json,
    list_mailbox_json,
    sync_now,
)
from mailroom.services.quarantine import dismiss_message, list_quarantine, retry_message
from mailroom.web.api.schemas import (
    ERRORS,
    MailboxErrorOut,
    MailboxOut,
    Page,
    QuarantinedOut,
    SyncQueued,
)
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


QuarantineId = Annotated[int, Path(ge=1, le=2**62)]


@router.get("/mailboxes/{id}/quarantine", response_model=Page[QuarantinedOut])
def get_quarantine(ctx: ApiCtx, db: Db, id: MailboxId) -> dict[str, Any]:
    """Messages the server lists but the sync could not fetch: quarantined, retrying,
    dismissed, each with its last error."""
    return {"items": list_quarantine(session=db, mailbox_id=id, viewer=ctx.viewer), "next": None}


@router.post("/mailboxes/{id}/quarantine/{qid}/retry", response_model=QuarantinedOut)
def retry(ctx: ApiCtx, db: Db, id: MailboxId, qid: QuarantineId) -> dict[str, Any]:
    """Fetch the message again at the next sync (one attempt); a sync is requested."""
    return retry_message(session=db, mailbox_id=id, quarantine_id=qid, viewer=ctx.viewer)


@router.post("/mailboxes/{id}/quarantine/{qid}/dismiss", response_model=QuarantinedOut)
def dismiss(ctx: ApiCtx, db: Db, id: MailboxId, qid: QuarantineId) -> dict[str, Any]:
    """Accept the loss: the message is no longer fetched, and stays listed as dismissed."""
    return dismiss_message(session=db, mailbox_id=id, quarantine_id=qid, viewer=ctx.viewer)


@router.post("/mailboxes/{id}/aliases/reject", response_model=MailboxOut)
def reject(ctx: ApiCtx, db: Db, id: MailboxId, body: AliasIn) -> dict[str, Any]:
    """Reject an alias (admins): it is removed from the mailbox."""
    reject_alias(session=db, mailbox_id=id, address=body.address, viewer=ctx.viewer)
    return get_mailbox_json(session=db, mailbox_id=id, viewer=ctx.viewer)


@router.post("/mailboxes/{id}/aliases/resend", response_model=MailboxOut)
def resend(ctx: ApiCtx, db: Db, app: MailroomApp, id: MailboxId, body: AliasIn) -> dict[str, Any]:
    """Mail a new confirmation link to an alias outside the company's domains."""
    resend_confirmation(
        session=db,
        mailbox_id=id,
        address=body.address,
        public_url=app.settings.public_url,
        viewer=ctx.viewer,
    )
    return get_mailbox_json(session=db, mailbox_id=id, viewer=ctx.viewer)

"""`/api/v1/mailboxes` writes: connect, test, change the password, set SMTP.

The same steps as "My mailboxes" (web.mail_setup): everything is tested before it is
saved; answers never contain a password.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from mailroom.crm import access
from mailroom.errors import MailroomError
from mailroom.outbox.smtp_settings import smtp_summary
from mailroom.web.api.schemas import ERRORS, MailboxOut
from mailroom.web.api.schemas_in import MailboxEditIn, MailboxIn, SmtpIn, TestOut
from mailroom.web.deps import ApiCtx, Db, MailroomApp
from mailroom.web.mail_setup import (
    SmtpInput,
    change_password,
    check_stored,
    connect_mailbox,
    save_smtp,
    settings_of,
)
from mailroom.web.present import mailbox_views
from mailroom.web.tasks import start_sync

router = APIRouter(tags=["mailboxes"], responses=ERRORS)
MailboxId = Annotated[int, Path(ge=1, le=2**62)]


def _smtp(given: SmtpIn | None) -> SmtpInput | None:
    if given is None:
        return None
    return SmtpInput(
        host=given.host,
        port=given.port,
        security=given.security,
        username=given.username or None,
        password=given.password,
    )


@router.post("/mailboxes", response_model=MailboxOut, status_code=201)
def create(ctx: ApiCtx, db: Db, app: MailroomApp, body: MailboxIn) -> dict[str, Any]:
    """Connect one of your mailboxes (tested first; 502 with the fix if it cannot log in)."""
    incoming = settings_of(
        host=body.host,
        port=body.port,
        security=body.security,
        username=body.username or ctx.user.email,
        password=body.password,
        allow_self_signed=body.allow_self_signed,
    )
    mailbox = connect_mailbox(
        db,
        app,
        user=ctx.user,
        company=ctx.company,
        protocol=body.protocol,
        incoming=incoming,
        smtp=_smtp(body.smtp),
        folders=body.folders,
        backfill=body.backfill,
        aliases=body.aliases,
    )
    db.commit()
    view = mailbox_views(db, [mailbox])[0]
    db.rollback()  # end this request's transaction (SQLite: its lock) before the sync writes
    start_sync(app, view["id"])
    return view


@router.post("/mailboxes/{id}/test", response_model=TestOut)
def test(ctx: ApiCtx, db: Db, app: MailroomApp, id: MailboxId) -> dict[str, Any]:
    """Log in with the stored settings, IMAP/POP3 and SMTP; `ok` false with the fix."""
    mailbox = access.get_mailbox(db, viewer=ctx.viewer, mailbox_id=id)
    try:
        return {"ok": True, "lines": check_stored(db, app, mailbox)}
    except MailroomError as exc:
        return {"ok": False, "lines": [], "error": exc.message, "hint": exc.hint}


@router.patch("/mailboxes/{id}", response_model=MailboxOut)
def edit(
    ctx: ApiCtx, db: Db, app: MailroomApp, id: MailboxId, body: MailboxEditIn
) -> dict[str, Any]:
    """Change the password (tested first); a failed mailbox is enabled and synced again."""
    mailbox = access.get_mailbox(db, viewer=ctx.viewer, mailbox_id=id)
    change_password(db, app, mailbox, body.password)
    db.commit()
    view = mailbox_views(db, [mailbox])[0]
    db.rollback()  # end this request's transaction (SQLite: its lock) before the sync writes
    start_sync(app, id)
    return view


@router.put("/mailboxes/{id}/smtp")
def set_smtp(ctx: ApiCtx, db: Db, app: MailroomApp, id: MailboxId, body: SmtpIn) -> dict[str, Any]:
    """Set how the mailbox sends (tested first); the provider's limits come back."""
    mailbox = access.get_mailbox(db, viewer=ctx.viewer, mailbox_id=id)
    smtp = _smtp(body)
    assert smtp is not None
    row = save_smtp(db, app, mailbox, smtp)
    db.commit()
    return smtp_summary(row)

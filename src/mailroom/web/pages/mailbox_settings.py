"""An existing mailbox's settings page: change its password, set how it sends (SMTP), test.

Each form tests before it saves (web.mail_setup): a new password must log in to the
IMAP/POP3 server, new SMTP settings must log in to the SMTP server. Saving a password
re-enables a mailbox that failed (sync.mailboxes.edit_mailbox) and starts a sync.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from mailroom.crm import access
from mailroom.db.models import Mailbox
from mailroom.errors import BadInput, MailroomError
from mailroom.outbox.smtp_settings import smtp_summary
from mailroom.web.deps import Csrf, Db, MailroomApp, PageCtx
from mailroom.web.mail_setup import change_password, check_stored, save_smtp, smtp_row
from mailroom.web.pages.mailboxes import Field, Secret, Short, form_values, smtp_input
from mailroom.web.present import mailbox_views
from mailroom.web.tasks import start_sync
from mailroom.web.templating import render

router = APIRouter()


def _page(
    request: Request,
    ctx: PageCtx,
    db: Db,
    mailbox: Mailbox,
    *,
    status_code: int = 200,
    **values: Any,
) -> Response:
    row = smtp_row(db, mailbox)
    smtp = smtp_summary(row) if row is not None else None
    return render(
        request,
        "mailbox_settings.html",
        ctx,
        nav="mailboxes",
        status_code=status_code,
        mailbox=mailbox_views(db, [mailbox])[0],
        username=mailbox.username,
        smtp=smtp,
        **{"error": None, "lines": [], "where": "", "typed": {}, **values},
        **form_values(),
    )


@router.get("/mailboxes/{mailbox_id}/settings")
def settings_page(request: Request, ctx: PageCtx, db: Db, mailbox_id: int) -> Response:
    mailbox = access.get_mailbox(db, viewer=ctx.viewer, mailbox_id=mailbox_id)
    return _page(request, ctx, db, mailbox)


@router.post("/mailboxes/{mailbox_id}/password")
def password_route(
    request: Request,
    ctx: Csrf,
    db: Db,
    app: MailroomApp,
    mailbox_id: int,
    password: Secret,
) -> Response:
    mailbox = access.get_mailbox(db, viewer=ctx.viewer, mailbox_id=mailbox_id)
    try:
        change_password(db, app, mailbox, password)
        db.commit()
    except MailroomError as exc:
        db.rollback()
        return _page(request, ctx, db, mailbox, status_code=422, error=exc, where="password")
    start_sync(app, mailbox_id)
    return RedirectResponse(f"/mailboxes/{mailbox_id}/settings?notice=mailbox-password-saved", 303)


@router.post("/mailboxes/{mailbox_id}/smtp")
def smtp_route(
    request: Request,
    ctx: Csrf,
    db: Db,
    app: MailroomApp,
    mailbox_id: int,
    smtp_host: Field,
    smtp_port: Annotated[int, Form(ge=1, le=65535)],
    smtp_security: Short = "starttls",
    smtp_username: Field = "",
    smtp_password: Secret = "",
) -> Response:
    mailbox = access.get_mailbox(db, viewer=ctx.viewer, mailbox_id=mailbox_id)
    try:
        given = smtp_input(smtp_host, smtp_port, smtp_security, smtp_username, smtp_password)
        if given is None:
            raise BadInput("The SMTP server name is empty.", hint="Pick a provider or type it.")
        save_smtp(db, app, mailbox, given)
        db.commit()
    except MailroomError as exc:
        db.rollback()
        typed = {"smtp_host": smtp_host, "smtp_port": smtp_port, "smtp_security": smtp_security}
        typed["smtp_username"] = smtp_username
        return _page(
            request, ctx, db, mailbox, status_code=422, error=exc, where="smtp", typed=typed
        )
    return RedirectResponse(f"/mailboxes/{mailbox_id}/settings?notice=smtp-saved", 303)


@router.post("/mailboxes/{mailbox_id}/test")
def test_route(request: Request, ctx: Csrf, db: Db, app: MailroomApp, mailbox_id: int) -> Response:
    """Log in with the stored settings, IMAP/POP3 and SMTP; shows each outcome."""
    mailbox = access.get_mailbox(db, viewer=ctx.viewer, mailbox_id=mailbox_id)
    try:
        lines = check_stored(db, app, mailbox)
    except MailroomError as exc:
        return _page(request, ctx, db, mailbox, status_code=422, error=exc, where="test")
    return _page(request, ctx, db, mailbox, lines=lines, where="test")

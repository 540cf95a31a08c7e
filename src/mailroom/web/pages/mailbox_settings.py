"""An existing mailbox's settings page: change its password, set how it sends (SMTP), test.

Each form tests before it saves (services.mailbox_setup): a new password must log in to
the IMAP/POP3 server, new SMTP settings must log in to the SMTP server. Saving a password
re-enables a mailbox that failed (mailboxes.store.edit_mailbox) and starts a sync.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from mailroom.db.models import RECORD_TYPES
from mailroom.errors import BadInput, MailroomError, NotFound, RateLimited
from mailroom.outbox.smtp_settings import smtp_summary
from mailroom.services.mailbox_checks import smtp_row, test_mailbox
from mailroom.services.mailbox_feeds import change_mailbox_feeds, mailbox_feeds
from mailroom.services.mailbox_setup import IncomingChange, edit_incoming, set_outgoing
from mailroom.services.mailboxes import get_mailbox_json, sync_now
from mailroom.web.deps import Csrf, Db, MailroomApp, PageCtx, host_policy
from mailroom.web.pages.mailboxes import Field, Secret, Short, form_values, smtp_input
from mailroom.web.templating import render

router = APIRouter()


def _page(
    request: Request,
    ctx: PageCtx,
    db: Db,
    mailbox_id: int,
    *,
    status_code: int = 200,
    **values: Any,
) -> Response:
    mailbox = get_mailbox_json(session=db, mailbox_id=mailbox_id, viewer=ctx.viewer)
    row = smtp_row(db, mailbox_id=mailbox_id)
    smtp = smtp_summary(row) if row is not None else None
    return render(
        request,
        "mailbox_settings.html",
        ctx,
        nav="mailboxes",
        status_code=status_code,
        mailbox=mailbox,
        username=mailbox["username"],
        smtp=smtp,
        record_types=RECORD_TYPES,
        feeds=mailbox_feeds(session=db, mailbox_id=mailbox_id, viewer=ctx.viewer),
        **{"error": None, "lines": [], "where": "", "typed": {}, **values},
        **form_values(),
    )


def settings_with(
    request: Request, ctx: PageCtx, db: Db, mailbox_id: int, *, error: MailroomError, where: str
) -> Response:
    """The settings page again, with `error` shown in the section `where`."""
    return _page(
        request, ctx, db, mailbox_id, status_code=_failed(exc=error), error=error, where=where
    )


def _failed(exc: MailroomError) -> int:
    return 429 if isinstance(exc, RateLimited) else 422


@router.get("/mailboxes/{mailbox_id}/settings")
def settings_page(request: Request, ctx: PageCtx, db: Db, mailbox_id: int) -> Response:
    return _page(request, ctx, db, mailbox_id)


@router.post("/mailboxes/{mailbox_id}/password")
def password_route(
    request: Request,
    ctx: Csrf,
    db: Db,
    app: MailroomApp,
    mailbox_id: int,
    password: Secret,
) -> Response:
    try:
        edit_incoming(
            session=db,
            app=app,
            mailbox_id=mailbox_id,
            change=IncomingChange(password=password),
            viewer=ctx.viewer,
            network=host_policy(request, ctx),
        )
    except MailroomError as exc:
        db.rollback()
        status = _failed(exc)
        return _page(request, ctx, db, mailbox_id, status_code=status, error=exc, where="password")
    sync_now(session=db, app=app, mailbox_id=mailbox_id, viewer=ctx.viewer, here=True)
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
    try:
        given = smtp_input(smtp_host, smtp_port, smtp_security, smtp_username, smtp_password)
        if given is None:
            raise BadInput("The SMTP server name is empty.", hint="Pick a provider or type it.")
        network = host_policy(request, ctx)
        set_outgoing(
            session=db,
            app=app,
            mailbox_id=mailbox_id,
            smtp=given,
            viewer=ctx.viewer,
            network=network,
        )
    except MailroomError as exc:
        db.rollback()
        typed = {"smtp_host": smtp_host, "smtp_port": smtp_port, "smtp_security": smtp_security}
        typed["smtp_username"] = smtp_username
        status = _failed(exc)
        return _page(
            request, ctx, db, mailbox_id, status_code=status, error=exc, where="smtp", typed=typed
        )
    return RedirectResponse(f"/mailboxes/{mailbox_id}/settings?notice=smtp-saved", 303)


@router.post("/mailboxes/{mailbox_id}/test")
def test_route(request: Request, ctx: Csrf, db: Db, app: MailroomApp, mailbox_id: int) -> Response:
    """Log in with the stored settings, IMAP/POP3 and SMTP; shows each outcome."""
    network = host_policy(request, ctx)
    try:
        found = test_mailbox(
            session=db, app=app, mailbox_id=mailbox_id, viewer=ctx.viewer, network=network
        )
    except NotFound:
        raise  # not the caller's mailbox: 404
    except MailroomError as exc:
        db.rollback()
        status = _failed(exc)
        return _page(request, ctx, db, mailbox_id, status_code=status, error=exc, where="test")
    lines = found.lines()
    return _page(request, ctx, db, mailbox_id, lines=lines, where="test")


@router.post("/mailboxes/{mailbox_id}/feeds")
def feeds_save(
    request: Request,
    ctx: Csrf,
    db: Db,
    mailbox_id: int,
    feeds: Annotated[list[str] | None, Form(max_length=5)] = None,
) -> Response:
    """Save which record types the mailbox's mail may link to (issue 13 item 11)."""
    try:
        change_mailbox_feeds(
            session=db, mailbox_id=mailbox_id, feeds=list(feeds or []), viewer=ctx.viewer
        )
    except BadInput as exc:
        db.rollback()
        return _page(request, ctx, db, mailbox_id, status_code=422, error=exc, where="feeds")
    return RedirectResponse(f"/mailboxes/{mailbox_id}/settings?notice=feeds-saved#feeds", 303)

"""OAuth on the dashboard: "Sign in with Google/Microsoft", Reconnect, an admin's sign-in
request, and the provider's redirect back (`/oauth/callback`).

Each route parses the form or query, calls one function of services.oauth_web and
presents the answer. `/oauth/start` is a CSRF-checked POST that sends the browser to the
provider; `/oauth/callback` is the GET the provider redirects to: its CSRF protection is
the `state` bound server-side to this browser's session (services.oauth_web). Errors are
shown on My mailboxes, above the sign-in buttons; no token or code is ever put on a page.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from mailroom.errors import MailroomError
from mailroom.services.mailboxes import sync_now as sync_now_service
from mailroom.services.oauth_web import (
    SignInStateRefused,
    WebServers,
    begin_sign_in,
    finish_from_callback,
    request_sign_in,
)
from mailroom.web.deps import Csrf, Db, MailroomApp, PageCtx, host_policy
from mailroom.web.pages.mailboxes import render_mailboxes

router = APIRouter()

Field = Annotated[str, Form(max_length=320)]
Short = Annotated[str, Form(max_length=20)]
OptionalPort = Annotated[int | None, Form(ge=1, le=65535)]
OptionalId = Annotated[int | None, Form(ge=1)]
PARAM_LIMIT = 4000  # a provider's redirect query: code, state, error, description


@router.post("/oauth/start")
def start(
    request: Request,
    ctx: Csrf,
    db: Db,
    app: MailroomApp,
    provider: Short = "",
    mailbox_id: OptionalId = None,
    request_id: OptionalId = None,
    address: Field = "",
    protocol: Short = "imap",
    host: Field = "",
    port: OptionalPort = None,
    security: Short = "",
    smtp_host: Field = "",
    smtp_port: OptionalPort = None,
    smtp_security: Short = "",
    backfill: Short = "90",
    allow_self_signed: Annotated[bool, Form()] = False,
) -> Response:
    """Store the pending sign-in for this session and send the browser to the provider."""
    assert ctx.web_session is not None  # Csrf is a page session
    servers = WebServers(
        address=address.strip(),
        protocol=protocol,
        host=host.strip(),
        port=port,
        security=security,
        smtp_host=smtp_host.strip(),
        smtp_port=smtp_port,
        smtp_security=smtp_security,
        backfill=backfill,
        allow_self_signed=allow_self_signed,
    )
    try:
        url = begin_sign_in(
            session=db,
            app=app,
            viewer=ctx.viewer,
            web_session_id=ctx.web_session.id,
            provider=provider,
            servers=servers,
            mailbox_id=mailbox_id,
            request_id=request_id,
        )
    except MailroomError as exc:
        db.rollback()
        return render_mailboxes(request, ctx, db, status_code=422, oauth_error=exc)
    return RedirectResponse(url, status_code=303)


@router.get("/oauth/callback")
def callback(request: Request, ctx: PageCtx, db: Db, app: MailroomApp) -> Response:
    """The provider's redirect: finish the sign-in this session started, then My mailboxes."""
    assert ctx.web_session is not None
    params = {k: v[:PARAM_LIMIT] for k, v in request.query_params.items()}
    try:
        done = finish_from_callback(
            session=db,
            app=app,
            viewer=ctx.viewer,
            web_session_id=ctx.web_session.id,
            params=params,
            network=host_policy(request, ctx),
        )
    except MailroomError as exc:
        db.rollback()
        status = 403 if isinstance(exc, SignInStateRefused) else 422
        return render_mailboxes(request, ctx, db, status_code=status, oauth_error=exc)
    sync_now_service(session=db, app=app, mailbox_id=done.mailbox_id, viewer=ctx.viewer, here=True)
    notice = "oauth-reconnected" if done.reconnected else "oauth-connected"
    return RedirectResponse(f"/mailboxes?notice={notice}#mailbox-{done.mailbox_id}", 303)


@router.post("/oauth/requests")
def ask_user(
    request: Request,
    ctx: Csrf,
    db: Db,
    app: MailroomApp,
    user_email: Field,
    provider: Short,
    mailbox_id: OptionalId = None,
    backfill: Short = "90",
) -> Response:
    """An admin asks a user of the company to sign a mailbox in with a provider."""
    try:
        request_sign_in(
            session=db,
            app=app,
            viewer=ctx.viewer,
            user_email=user_email,
            provider=provider,
            servers=WebServers(backfill=backfill),
            mailbox_id=mailbox_id,
        )
    except MailroomError as exc:
        db.rollback()
        return render_mailboxes(request, ctx, db, status_code=422, oauth_error=exc)
    return RedirectResponse("/mailboxes?notice=oauth-requested", status_code=303)

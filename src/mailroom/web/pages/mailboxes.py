"""“My mailboxes”: connect (with provider presets), test, sync now, sharing, disconnect.

Connecting is two steps on one form: "Test connection" logs in to the IMAP or POP3 server
and, when SMTP settings are filled in, to the SMTP server, and lists the folders to choose
from (nothing is saved); "Connect" tests again on the server before it saves
(services.mailbox_setup), so a mailbox that cannot log in is never stored. The password travels
only in the form's POST bodies; it is never echoed into a page, and once saved it is
encrypted at rest.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from mailroom.connectors.presets import PRESETS
from mailroom.crm import access
from mailroom.db.web_models import SHARING_LEVELS
from mailroom.errors import BadInput, HostNotAllowed, MailroomError, RateLimited
from mailroom.mailboxes.store import PROTOCOLS, settings_of
from mailroom.services.mailbox_checks import SmtpInput, test_settings
from mailroom.services.mailbox_setup import (
    BACKFILL_CHOICES,
    NewMailbox,
    since_of,
)
from mailroom.services.mailbox_setup import (
    connect_mailbox as connect_mailbox_service,
)
from mailroom.services.mailboxes import disconnect as disconnect_service
from mailroom.services.mailboxes import error_log, get_mailbox_json, mailbox_json
from mailroom.services.mailboxes import sync_now as sync_now_service
from mailroom.services.oauth_web import page_values as oauth_page_values
from mailroom.services.quarantine import dismiss_message, list_quarantine, retry_message
from mailroom.web.deps import Csrf, Ctx, Db, MailroomApp, PageCtx, host_policy
from mailroom.web.templating import is_htmx, render

router = APIRouter()


def _presets() -> list[dict[str, Any]]:
    return [
        {
            "name": p.name,
            "label": p.label,
            "host": p.imap_host or "",
            "port": p.imap_port,
            "security": p.imap_security.value,
            "pop3_host": p.pop3_host or "",
            "pop3_port": p.pop3_port,
            "pop3_security": p.pop3_security.value,
            "smtp_host": p.smtp_host or "",
            "smtp_port": p.smtp_port,
            "smtp_security": p.smtp_security.value,
            "oauth": p.oauth or "",
        }
        for p in PRESETS.values()
    ]


def _own_mailboxes(db: Db, ctx: PageCtx) -> list[dict[str, Any]]:
    boxes = [m for m in access.visible_mailboxes(db, viewer=ctx.viewer) if m.user_id == ctx.user.id]
    return mailbox_json(session=db, mailboxes=boxes)


@router.get("/mailboxes")
def mailboxes_page(request: Request, ctx: PageCtx, db: Db) -> Response:
    template = "mailbox_list.html" if is_htmx(request) else "mailboxes.html"
    return render_mailboxes(request, ctx, db, template=template)


def render_mailboxes(
    request: Request,
    ctx: Ctx,
    db: Db,
    *,
    template: str = "mailboxes.html",
    status_code: int = 200,
    form: dict[str, Any] | None = None,
    error: MailroomError | None = None,
    oauth_error: MailroomError | None = None,
) -> Response:
    """My mailboxes: the list, the OAuth sign-in block, the connect form (with an error).

    Its sign-in forms POST to /oauth/start, which redirects to the provider: the page's
    CSP `form-action` names the registered providers' origins (and only those)."""
    oauth = oauth_page_values(db, viewer=ctx.viewer)
    response = render(
        request,
        template,
        ctx,
        nav="mailboxes",
        status_code=status_code,
        mailboxes=_own_mailboxes(db, ctx),
        form=form or _blank_form(ctx),
        error=error,
        oauth_error=oauth_error,
        **oauth,
        **form_values(),
    )
    if oauth["oauth_origins"]:
        from mailroom.web.app import PAGE_CSP  # the app imports the pages: read at call time

        allowed = " ".join(["'self'", *oauth["oauth_origins"]])
        response.headers["Content-Security-Policy"] = PAGE_CSP.replace(
            "form-action 'self'", f"form-action {allowed}"
        )
    return response


def form_values() -> dict[str, Any]:
    return {
        "presets": _presets(),
        "protocols": PROTOCOLS,
        "backfill_choices": BACKFILL_CHOICES,
        "sharing_levels": SHARING_LEVELS,
        "securities": SECURITY_WORDS,
    }


SECURITY_WORDS = {"ssl": "SSL/TLS", "starttls": "STARTTLS", "none": "None (unencrypted)"}


def _blank_form(ctx: PageCtx) -> dict[str, Any]:
    return {
        "preset": "custom",
        "host": "",
        "port": 993,
        "security": "ssl",
        "username": ctx.user.email,
        "protocol": "imap",
        "backfill": "90",
        "allow_self_signed": False,
        "aliases": "",
        "smtp_host": "",
        "smtp_port": 587,
        "smtp_security": "starttls",
        "smtp_username": "",
    }


Field = Annotated[str, Form(max_length=320)]
Port = Annotated[int, Form(ge=1, le=65535)]
Short = Annotated[str, Form(max_length=10)]
Secret = Annotated[str, Form(max_length=1000)]


def smtp_input(
    host: str, port: int | None, security: str, username: str, password: str
) -> SmtpInput | None:
    """The form's SMTP part, or None when its host is left empty (no sending)."""
    if not host.strip():
        return None
    return SmtpInput(
        host=host,
        port=port or 587,
        security=security,
        username=username.strip() or None,
        password=password or None,
    )


def refused_status(exc: MailroomError) -> int:
    """429 for too many tests, 422 for a host that is not allowed; else 200 (the test ran,
    its outcome is the answer)."""
    if isinstance(exc, RateLimited):
        return 429
    return 422 if isinstance(exc, HostNotAllowed) else 200


@router.post("/mailboxes/test")
def test_connection(
    request: Request,
    ctx: Csrf,
    host: Field,
    port: Port,
    security: Short,
    username: Field,
    password: Secret,
    protocol: Short = "imap",
    allow_self_signed: Annotated[bool, Form()] = False,
    smtp_host: Field = "",
    smtp_port: Annotated[int | None, Form(ge=1, le=65535)] = None,
    smtp_security: Short = "starttls",
    smtp_username: Field = "",
    smtp_password: Secret = "",
) -> Response:
    """Test the incoming server and, when given, the SMTP server; saves nothing."""
    try:
        incoming = settings_of(
            host=host,
            port=port,
            security=security,
            username=username,
            password=password,
            allow_self_signed=allow_self_signed,
        )
        smtp = smtp_input(smtp_host, smtp_port, smtp_security, smtp_username, smtp_password)
        network = host_policy(request, ctx)
        probe, lines = test_settings(
            protocol=protocol, incoming=incoming, smtp=smtp, network=network
        )
    except MailroomError as exc:
        status = refused_status(exc)
        return render(
            request, "mailbox_test.html", ctx, status_code=status, error=exc, folders=[], lines=[]
        )
    return render(
        request,
        "mailbox_test.html",
        ctx,
        error=None,
        folders=probe.folders if protocol == "imap" else [],
        lines=lines,
    )


@router.post("/mailboxes")
def connect_mailbox(
    request: Request,
    ctx: Csrf,
    db: Db,
    app: MailroomApp,
    host: Field,
    port: Port,
    security: Short,
    username: Field,
    password: Secret,
    protocol: Short = "imap",
    preset: Annotated[str, Form(max_length=20)] = "custom",
    allow_self_signed: Annotated[bool, Form()] = False,
    folder: Annotated[list[str] | None, Form()] = None,
    backfill: Short = "90",
    aliases: Annotated[str, Form(max_length=2000)] = "",
    smtp_host: Field = "",
    smtp_port: Annotated[int | None, Form(ge=1, le=65535)] = None,
    smtp_security: Short = "starttls",
    smtp_username: Field = "",
    smtp_password: Secret = "",
) -> Response:
    form = {
        "preset": preset,
        "host": host,
        "port": port,
        "security": security,
        "username": username,
        "protocol": protocol,
        "backfill": backfill,
        "allow_self_signed": allow_self_signed,
        "aliases": aliases,
        "smtp_host": smtp_host,
        "smtp_port": smtp_port or 587,
        "smtp_security": smtp_security,
        "smtp_username": smtp_username,
    }
    try:
        new = NewMailbox(
            host=host,
            port=port,
            password=password,
            username=username,
            protocol=protocol,
            security=security,
            allow_self_signed=allow_self_signed,
            smtp=smtp_input(smtp_host, smtp_port, smtp_security, smtp_username, smtp_password),
            folders=folder or (),
            aliases=[a for a in aliases.replace(",", " ").split() if a],
            since=since_of(backfill),
        )
        network = host_policy(request, ctx)
        new_id = connect_mailbox_service(
            session=db, app=app, user=ctx.user, new=new, network=network
        )
    except MailroomError as exc:
        db.rollback()
        return render_mailboxes(
            request,
            ctx,
            db,
            status_code=429 if isinstance(exc, RateLimited) else 422,
            form=form,
            error=exc,
        )
    sync_now_service(session=db, app=app, mailbox_id=new_id, viewer=ctx.viewer, here=True)
    return RedirectResponse("/mailboxes?notice=connected", status_code=303)


@router.post("/mailboxes/{mailbox_id}/sync")
def sync_now(ctx: Csrf, db: Db, app: MailroomApp, mailbox_id: int) -> Response:
    started = sync_now_service(
        session=db, app=app, mailbox_id=mailbox_id, viewer=ctx.viewer, here=True
    )
    notice = "sync-started" if started else "sync-running"
    return RedirectResponse(f"/mailboxes?notice={notice}", status_code=303)


@router.post("/mailboxes/{mailbox_id}/sharing")
def set_sharing(
    ctx: Csrf, db: Db, mailbox_id: int, level: Annotated[str, Form(max_length=20)]
) -> Response:
    access.set_sharing(db, viewer=ctx.viewer, mailbox_id=mailbox_id, level=level)
    db.commit()
    return RedirectResponse("/mailboxes?notice=sharing-saved", status_code=303)


@router.post("/mailboxes/{mailbox_id}/disconnect")
def disconnect(
    ctx: Csrf, db: Db, mailbox_id: int, mail: Annotated[str, Form(max_length=10)]
) -> Response:
    if mail not in ("keep", "remove"):
        raise BadInput("Choose whether to keep or remove its mail.")
    disconnect_service(
        session=db, mailbox_id=mailbox_id, remove_mail=mail == "remove", viewer=ctx.viewer
    )
    return RedirectResponse("/mailboxes?notice=disconnected", status_code=303)


@router.get("/mailboxes/{mailbox_id}/errors")
def errors_page(
    request: Request, ctx: PageCtx, db: Db, mailbox_id: int, notice: str | None = None
) -> Response:
    errors = error_log(session=db, mailbox_id=mailbox_id, viewer=ctx.viewer)
    held = list_quarantine(session=db, mailbox_id=mailbox_id, viewer=ctx.viewer)
    return render(
        request,
        "mailbox_errors.html",
        ctx,
        nav="mailboxes",
        mailbox=get_mailbox_json(session=db, mailbox_id=mailbox_id, viewer=ctx.viewer),
        errors=errors,
        quarantine=held,
        notice=QUARANTINE_NOTICES.get(notice or ""),
    )


QUARANTINE_NOTICES = {
    "retry": "It is fetched again at the next sync (requested now).",
    "dismiss": "Dismissed: Mailroom no longer fetches it.",
}


@router.post("/mailboxes/{mailbox_id}/quarantine/{quarantine_id}/retry")
def quarantine_retry(ctx: Csrf, db: Db, mailbox_id: int, quarantine_id: int) -> Response:
    """The error-log page's Retry: fetch the message again at the next sync."""
    retry_message(session=db, mailbox_id=mailbox_id, quarantine_id=quarantine_id, viewer=ctx.viewer)
    return RedirectResponse(f"/mailboxes/{mailbox_id}/errors?notice=retry", status_code=303)


@router.post("/mailboxes/{mailbox_id}/quarantine/{quarantine_id}/dismiss")
def quarantine_dismiss(ctx: Csrf, db: Db, mailbox_id: int, quarantine_id: int) -> Response:
    """The error-log page's Dismiss: accept that the message is not stored."""
    dismiss_message(
        session=db, mailbox_id=mailbox_id, quarantine_id=quarantine_id, viewer=ctx.viewer
    )
    return RedirectResponse(f"/mailboxes/{mailbox_id}/errors?notice=dismiss", status_code=303)

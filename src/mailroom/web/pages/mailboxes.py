"""“My mailboxes”: connect (with provider presets), test, sync now, sharing, disconnect.

Connecting is two steps on one form: "Test connection" logs in and lists the folders to
choose from (nothing is saved), and "Connect" tests again on the server before it saves,
so a mailbox that cannot log in is never stored. The password travels only in the form's
POST bodies; it is never echoed into a page, and once saved it is encrypted at rest.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select

from mailroom.connectors.base import FolderInfo, Security, ServerSettings
from mailroom.connectors.presets import PRESETS
from mailroom.crm.retention import disconnect_mailbox
from mailroom.db.models import Mailbox
from mailroom.db.web_models import SHARING_LEVELS
from mailroom.errors import BadInput, MailroomError
from mailroom.security import access
from mailroom.sync.mailboxes import PROTOCOLS, add_mailbox
from mailroom.web.deps import Csrf, Db, MailroomApp, PageCtx
from mailroom.web.present import error_log, mailbox_views
from mailroom.web.tasks import start_sync
from mailroom.web.templating import is_htmx, render

router = APIRouter()
BACKFILL_CHOICES = {"30": "Last 30 days", "90": "Last 90 days", "365": "Last year", "all": "All"}


def _presets() -> list[dict[str, Any]]:
    return [
        {
            "name": p.name,
            "label": p.label,
            "host": p.imap_host or "",
            "port": p.imap_port,
            "security": "ssl" if p.imap_port == 993 else "starttls",
        }
        for p in PRESETS.values()
    ]


@router.get("/mailboxes")
def mailboxes_page(request: Request, ctx: PageCtx, db: Db) -> Response:
    boxes = [m for m in access.visible_mailboxes(db, viewer=ctx.viewer) if m.user_id == ctx.user.id]
    views = mailbox_views(db, boxes)
    template = "mailbox_list.html" if is_htmx(request) else "mailboxes.html"
    return render(
        request,
        template,
        ctx,
        nav="mailboxes",
        mailboxes=views,
        form=_blank_form(ctx),
        **_form_values(),
    )


def _form_values() -> dict[str, Any]:
    return {
        "presets": _presets(),
        "protocols": PROTOCOLS,
        "backfill_choices": BACKFILL_CHOICES,
        "sharing_levels": SHARING_LEVELS,
    }


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
    }


def _settings(
    host: str, port: int, security: str, username: str, password: str, allow_self_signed: bool
) -> ServerSettings:
    try:
        sec = Security(security)
    except ValueError:
        raise BadInput(
            f"Unknown security {security!r}.", hint="Use ssl, starttls or none."
        ) from None
    if not host.strip():
        raise BadInput("The server name is empty.", hint="Pick a provider or type the IMAP host.")
    if not password:
        raise BadInput("The password is empty.", hint="Type the mailbox's password.")
    return ServerSettings(
        host=host.strip(),
        port=port,
        username=username.strip(),
        password=password,
        security=sec,
        allow_self_signed=allow_self_signed,
        timeout=20.0,
    )


def probe(protocol: str, settings: ServerSettings) -> list[FolderInfo]:
    """Log in and list the folders; changes nothing on the server."""
    if protocol != "imap":
        raise BadInput(f"Testing {protocol} is not available.", hint="Use IMAP.")
    from mailroom.connectors.imap import connect

    source = connect(settings)
    try:
        return list(source.list_folders())
    finally:
        source.close()


Field = Annotated[str, Form(max_length=320)]


@router.post("/mailboxes/test")
def test_connection(
    request: Request,
    ctx: Csrf,
    host: Field,
    port: Annotated[int, Form(ge=1, le=65535)],
    security: Annotated[str, Form(max_length=10)],
    username: Field,
    password: Annotated[str, Form(max_length=1000)],
    protocol: Annotated[str, Form(max_length=10)] = "imap",
    allow_self_signed: Annotated[bool, Form()] = False,
) -> Response:
    try:
        folders = probe(
            protocol, _settings(host, port, security, username, password, allow_self_signed)
        )
    except MailroomError as exc:
        return render(request, "mailbox_test.html", ctx, error=exc, folders=[])
    return render(request, "mailbox_test.html", ctx, error=None, folders=folders)


@router.post("/mailboxes")
def connect_mailbox(
    request: Request,
    ctx: Csrf,
    db: Db,
    app: MailroomApp,
    host: Field,
    port: Annotated[int, Form(ge=1, le=65535)],
    security: Annotated[str, Form(max_length=10)],
    username: Field,
    password: Annotated[str, Form(max_length=1000)],
    protocol: Annotated[str, Form(max_length=10)] = "imap",
    preset: Annotated[str, Form(max_length=20)] = "custom",
    allow_self_signed: Annotated[bool, Form()] = False,
    folder: Annotated[list[str] | None, Form()] = None,
    backfill: Annotated[str, Form(max_length=10)] = "90",
    aliases: Annotated[str, Form(max_length=2000)] = "",
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
    }
    try:
        _check_limit(db, ctx)
        probe(protocol, _settings(host, port, security, username, password, allow_self_signed))
        mailbox = add_mailbox(
            db,
            app.secrets,
            user=ctx.user,
            host=host,
            port=port,
            password=password,
            protocol=protocol,
            security=security,
            username=username,
            aliases=[a for a in aliases.replace(",", " ").split() if a],
            folders=folder or (),
            allow_self_signed=allow_self_signed,
        )
        mailbox.since_date = _since(backfill)
        new_id = mailbox.id
        db.commit()
    except MailroomError as exc:
        db.rollback()
        boxes = mailbox_views(
            db,
            [
                m
                for m in access.visible_mailboxes(db, viewer=ctx.viewer)
                if m.user_id == ctx.user.id
            ],
        )
        return render(
            request,
            "mailboxes.html",
            ctx,
            nav="mailboxes",
            status_code=422,
            mailboxes=boxes,
            form=form,
            error=exc,
            **_form_values(),
        )
    start_sync(app, new_id)
    return RedirectResponse("/mailboxes?notice=connected", status_code=303)


def _since(backfill: str) -> date | None:
    if backfill == "all":
        return None
    if not backfill.isdigit() or int(backfill) > 36500:
        raise BadInput(f"Unknown backfill window {backfill!r}.", hint="Pick one from the list.")
    return (datetime.now(UTC) - timedelta(days=int(backfill))).date()


def _check_limit(db: Db, ctx: PageCtx) -> None:
    limit = ctx.company.mailbox_limit
    if limit is None:
        return
    used = db.scalar(
        select(func.count()).select_from(Mailbox).where(Mailbox.company_id == ctx.company.id)
    )
    if (used or 0) >= limit:
        raise BadInput(
            f"Your company has reached its limit of {limit} mailboxes.",
            hint="Ask an admin to raise the limit under Admin → Settings.",
        )


@router.post("/mailboxes/{mailbox_id}/sync")
def sync_now(ctx: Csrf, db: Db, app: MailroomApp, mailbox_id: int) -> Response:
    mailbox_id = access.get_mailbox(db, viewer=ctx.viewer, mailbox_id=mailbox_id).id
    db.rollback()  # end this request's transaction (SQLite: its lock) before the sync writes
    started = start_sync(app, mailbox_id)
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
    mailbox = access.get_mailbox(db, viewer=ctx.viewer, mailbox_id=mailbox_id)
    disconnect_mailbox(db, mailbox=mailbox, remove_mail=mail == "remove")
    db.commit()
    return RedirectResponse("/mailboxes?notice=disconnected", status_code=303)


@router.get("/mailboxes/{mailbox_id}/errors")
def errors_page(request: Request, ctx: PageCtx, db: Db, mailbox_id: int) -> Response:
    mailbox = access.get_mailbox(db, viewer=ctx.viewer, mailbox_id=mailbox_id)
    return render(
        request,
        "mailbox_errors.html",
        ctx,
        nav="mailboxes",
        mailbox=mailbox_views(db, [mailbox])[0],
        errors=error_log(db, mailbox),
    )

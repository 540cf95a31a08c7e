"""Alias pages: confirm by the mailed link, the admins' approval page, send the link again.

- `/aliases/confirm?token=…` (no sign-in: the token is the proof) shows what would be
  confirmed and a Confirm button; only the POST confirms, so a mail scanner that follows
  the link changes nothing. Protected like sign-in (the pre-session token).
- `/admin/aliases`: every alias of the company not yet approved, with its mailbox, owner
  and state; Approve / Reject (admins only, 404 to members).
- `POST /mailboxes/{id}/aliases/resend`: the owner mails a new confirmation link (shown
  on the mailbox's settings page, with each alias's state).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from mailroom.crm import access
from mailroom.errors import MailroomError, NotFound, UserError
from mailroom.services.aliases import (
    approve_alias,
    confirm_alias,
    peek_confirmation,
    pending_aliases,
    reject_alias,
    resend_confirmation,
)
from mailroom.web.deps import Csrf, Db, MailroomApp, PageCtx, pre_session_csrf
from mailroom.web.pages.mailbox_settings import settings_with
from mailroom.web.templating import render, render_pre_session

router = APIRouter()
Address = Annotated[str, Form(max_length=320)]


@router.get("/aliases/confirm")
def confirm_page(request: Request, db: Db, token: str = "") -> Response:
    """What the link confirms, and the Confirm button (a GET confirms nothing)."""
    pending = peek_confirmation(session=db, token=token[:200])
    db.rollback()
    return render_pre_session(
        request, "alias_confirm.html", token=token, pending=pending, confirmed=None
    )


@router.post("/aliases/confirm", dependencies=[Depends(pre_session_csrf)])
def confirm(request: Request, db: Db, token: Annotated[str, Form(max_length=200)]) -> Response:
    """Confirm the alias the token was mailed to; it then counts as the owner's address."""
    address = confirm_alias(session=db, token=token)
    return render_pre_session(
        request, "alias_confirm.html", token="", pending=None, confirmed=address
    )


@router.get("/admin/aliases")
def admin_aliases(request: Request, ctx: PageCtx, db: Db) -> Response:
    """The aliases of the company waiting for approval."""
    return _admin_page(request, ctx, db)


def _admin_page(
    request: Request,
    ctx: PageCtx,
    db: Db,
    *,
    done: str = "",
    error: UserError | None = None,
    status_code: int = 200,
) -> Response:
    access.require_admin(ctx.viewer)
    return render(
        request,
        "admin_aliases.html",
        ctx,
        nav="admin",
        status_code=status_code,
        aliases=pending_aliases(db, viewer=ctx.viewer),
        done=done,
        error=error,
    )


@router.post("/admin/aliases/{mailbox_id}/approve")
def approve(request: Request, ctx: Csrf, db: Db, mailbox_id: int, address: Address) -> Response:
    """Approve a pending alias; back to the list."""
    try:
        approve_alias(session=db, mailbox_id=mailbox_id, address=address, viewer=ctx.viewer)
    except NotFound:
        raise  # another company's mailbox, or no such alias: 404 like every route
    except UserError as exc:
        db.rollback()
        return _admin_page(request, ctx, db, error=exc, status_code=422)
    return _admin_page(request, ctx, db, done=f"{address} approved.")


@router.post("/admin/aliases/{mailbox_id}/reject")
def reject(request: Request, ctx: Csrf, db: Db, mailbox_id: int, address: Address) -> Response:
    """Reject (remove) an alias; back to the list."""
    reject_alias(session=db, mailbox_id=mailbox_id, address=address, viewer=ctx.viewer)
    return _admin_page(request, ctx, db, done=f"{address} rejected and removed.")


@router.post("/mailboxes/{mailbox_id}/aliases/resend")
def resend(
    request: Request, ctx: Csrf, db: Db, app: MailroomApp, mailbox_id: int, address: Address
) -> Response:
    """Mail a new confirmation link to an alias; back to the mailbox's settings."""
    try:
        resend_confirmation(
            session=db,
            mailbox_id=mailbox_id,
            address=address,
            public_url=app.settings.public_url,
            viewer=ctx.viewer,
        )
    except NotFound:
        raise
    except MailroomError as exc:
        db.rollback()
        return settings_with(request, ctx, db, mailbox_id, error=exc, where="aliases")
    return RedirectResponse(f"/mailboxes/{mailbox_id}/settings#aliases", status_code=303)

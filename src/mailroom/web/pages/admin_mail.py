"""Admin → Blocklist and Admin → BCC drop address.

- Blocklist: the company's entries and per-user entries (an address or an @domain whose
  mail is never logged), with the built-in company domains shown and not removable —
  `matching.blocklist`, as `mailroom blocklist` calls it.
- Drop address: the company's private `log+TOKEN@host` address (made on first view, as
  `mailroom company dropbox` does), rotating it (the old address stops at once), and the
  policy for mail from senders who are not users (refuse or quarantine).
Both are admin-only (404 for members) and work on the admin's own company only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from mailroom.crm import access
from mailroom.db.models import User
from mailroom.dropbox.tokens import (
    DOMAIN_HINT,
    POLICIES,
    domain_problem,
    drop_address,
    ensure_token,
)
from mailroom.errors import MailroomError
from mailroom.matching.blocklist import add_entry, list_entries, remove_entry
from mailroom.web.deps import Csrf, Db, PageCtx
from mailroom.web.templating import render

router = APIRouter(prefix="/admin")
Entry = Annotated[str, Form(max_length=320)]


def _blocklist(
    request: Request, ctx: PageCtx, db: Db, *, status_code: int = 200, **values: Any
) -> Response:
    users = list(
        db.scalars(select(User.email).where(User.company_id == ctx.company.id).order_by(User.email))
    )
    return render(
        request,
        "admin_blocklist.html",
        ctx,
        nav="admin",
        status_code=status_code,
        entries=list_entries(db, company=ctx.company),
        users=users,
        **({"error": None, "form": {}} | values),
    )


@router.get("/blocklist")
def blocklist_page(request: Request, ctx: PageCtx, db: Db) -> Response:
    access.require_admin(ctx.viewer)
    return _blocklist(request, ctx, db)


@router.post("/blocklist")
def block(request: Request, ctx: Csrf, db: Db, entry: Entry, user: Entry = "") -> Response:
    form = {"entry": entry, "user": user}
    return _change_blocklist(
        request, ctx, db, add_entry, form, notice="blocked", keep_form=True, offer=True
    )


@router.post("/blocklist/remove")
def unblock(request: Request, ctx: Csrf, db: Db, entry: Entry, user: Entry = "") -> Response:
    form = {"entry": entry, "user": user}
    return _change_blocklist(request, ctx, db, remove_entry, form, notice="unblocked")


def _change_blocklist(
    request: Request,
    ctx: PageCtx,
    db: Db,
    change: Callable[..., object],
    form: dict[str, str],
    *,
    notice: str,
    keep_form: bool = False,
    offer: bool = False,
) -> Response:
    """Add or remove one entry (committed), or show the page again with the error (422);
    `keep_form` refills the form with what was typed."""
    access.require_admin(ctx.viewer)
    try:
        user_email = form["user"].strip() or None
        change(db, company=ctx.company, entry=form["entry"], user_email=user_email)
        db.commit()
    except MailroomError as exc:
        db.rollback()
        kept = form if keep_form else {}
        return _blocklist(request, ctx, db, status_code=422, error=exc, form=kept)
    query = {"notice": notice}
    if offer:  # the page then offers to remove what the entry already logged (pages/filtered.py)
        query |= {"offer": form["entry"], "offer_user": form["user"]}
    return RedirectResponse(f"/admin/blocklist?{urlencode(query)}", status_code=303)


@router.get("/dropbox")
def dropbox_page(request: Request, ctx: PageCtx, db: Db) -> Response:
    access.require_admin(ctx.viewer)
    token = ensure_token(db, company=ctx.company)
    db.commit()
    return render(
        request,
        "admin_dropbox.html",
        ctx,
        nav="admin",
        address=drop_address(token.token),
        domain_problem=domain_problem(resolve=False),
        domain_hint=DOMAIN_HINT,
        policy=token.unknown_senders,
        policies=POLICIES,
    )


@router.post("/dropbox")
def dropbox_save(
    ctx: Csrf,
    db: Db,
    rotate: Annotated[bool, Form()] = False,
    unknown_senders: Annotated[str | None, Form(max_length=20)] = None,
) -> Response:
    access.require_admin(ctx.viewer)
    ensure_token(db, company=ctx.company, rotate=rotate, unknown_senders=unknown_senders or None)
    db.commit()
    notice = "dropbox-rotated" if rotate else "dropbox-saved"
    return RedirectResponse(f"/admin/dropbox?notice={notice}", status_code=303)

"""Admin pages: users and roles, every mailbox's health, the company's settings.

Every route here calls `access.require_admin`, which answers 404 to members, and works
only on the admin's own company (`ctx.company`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from mailroom.crm import access
from mailroom.crm.companies import ROLES, add_user
from mailroom.crm.retention import retention_preview, set_privacy
from mailroom.db.models import User
from mailroom.db.web_models import VISIBILITY_MODES
from mailroom.digits import is_number
from mailroom.errors import BadInput, MailroomError, NotFound
from mailroom.services.mailbox_setup import set_mailbox_limit
from mailroom.services.mailboxes import mailbox_json
from mailroom.services.notices import (
    current_notice_mailbox_id,
    notice_mailbox_choices,
    set_notice_mailbox,
)
from mailroom.web.deps import Csrf, Db, PageCtx
from mailroom.web.templating import render

router = APIRouter(prefix="/admin")


def _users(db: Db, ctx: PageCtx) -> list[User]:
    return list(
        db.scalars(select(User).where(User.company_id == ctx.company.id).order_by(User.email))
    )


@router.get("")
def admin_home(ctx: PageCtx) -> Response:
    access.require_admin(ctx.viewer)
    return RedirectResponse("/admin/users", status_code=303)


@router.get("/users")
def users_page(request: Request, ctx: PageCtx, db: Db) -> Response:
    access.require_admin(ctx.viewer)
    return _users_page(request, ctx, db)


def _users_page(request: Request, ctx: PageCtx, db: Db, **values: Any) -> Response:
    """The users page; `values` set error and status_code."""
    return render(
        request,
        "admin_users.html",
        ctx,
        nav="admin",
        users=_users(db, ctx),
        roles=ROLES,
        **({"error": None} | values),
    )


@router.post("/users")
def add_user_route(
    request: Request,
    ctx: Csrf,
    db: Db,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1000)],
    name: Annotated[str, Form(max_length=200)] = "",
    role: Annotated[str, Form(max_length=20)] = "member",
) -> Response:
    access.require_admin(ctx.viewer)
    try:
        if role not in ROLES:
            raise BadInput(f"Unknown role {role!r}.", hint="Use admin or member.")
        add_user(
            db,
            company=ctx.company,
            email=email,
            name=name,
            admin=role == "admin",
            password=password,
        )
        db.commit()
    except MailroomError as exc:
        db.rollback()
        return _users_page(request, ctx, db, error=exc, status_code=422)
    return RedirectResponse("/admin/users?notice=user-added", status_code=303)


@router.post("/users/{user_id}/role")
def set_role(
    ctx: Csrf, db: Db, user_id: int, role: Annotated[str, Form(max_length=20)]
) -> Response:
    access.require_admin(ctx.viewer)
    user = db.get(User, user_id)
    if user is None or user.company_id != ctx.company.id:
        raise NotFound(f"No user {user_id}.")
    if role not in ROLES:
        raise BadInput(f"Unknown role {role!r}.", hint="Use admin or member.")
    if user.id == ctx.user.id and role != "admin":
        raise BadInput(
            "You cannot remove your own admin role.",
            hint="Ask another admin to do it, so the company keeps one.",
        )
    user.role = role
    db.commit()
    return RedirectResponse("/admin/users?notice=role-saved", status_code=303)


@router.get("/mailboxes")
def all_mailboxes(request: Request, ctx: PageCtx, db: Db) -> Response:
    access.require_admin(ctx.viewer)
    boxes = access.visible_mailboxes(db, viewer=ctx.viewer)
    owners = {u.id: u.email for u in _users(db, ctx)}
    return render(
        request,
        "admin_mailboxes.html",
        ctx,
        nav="admin",
        mailboxes=mailbox_json(session=db, mailboxes=boxes),
        owners=owners,
    )


@router.get("/settings")
def settings_page(request: Request, ctx: PageCtx, db: Db) -> Response:
    access.require_admin(ctx.viewer)
    return _settings_page(request, ctx, db)


def _settings_page(request: Request, ctx: PageCtx, db: Db, **values: Any) -> Response:
    """The settings page; `values` set error and status_code."""
    return render(
        request,
        "admin_settings.html",
        ctx,
        nav="admin",
        privacy=access.privacy_of(db, ctx.company.id),
        would_delete=retention_preview(db, company_id=ctx.company.id),
        modes=VISIBILITY_MODES,
        notice_choices=notice_mailbox_choices(session=db, company_id=ctx.company.id),
        notice_mailbox_id=current_notice_mailbox_id(session=db, company_id=ctx.company.id),
        **({"error": None} | values),
    )


@router.post("/settings")
def save_settings(
    request: Request,
    ctx: Csrf,
    db: Db,
    visibility: Annotated[str, Form(max_length=20)],
    retention_days: Annotated[int, Form(ge=1, le=36500)],
    mailbox_limit: Annotated[str, Form(max_length=9)] = "",
    retention_enabled: Annotated[bool, Form()] = False,
    notice_mailbox: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    access.require_admin(ctx.viewer)
    try:
        limit = mailbox_limit.strip()
        if limit and not is_number(limit):
            raise BadInput(
                "The mailbox limit must be a whole number.", hint="Leave it empty for no limit."
            )
        set_privacy(
            db,
            company_id=ctx.company.id,
            visibility=visibility,
            retention_days=retention_days,
            retention_enabled=retention_enabled,
        )
        set_mailbox_limit(
            session=db, company_id=ctx.company.id, limit=int(limit) if limit else None
        )
        chosen = notice_mailbox.strip()
        set_notice_mailbox(
            session=db,
            company_id=ctx.company.id,
            mailbox_id=int(chosen) if is_number(chosen) else None,
        )
        db.commit()
    except MailroomError as exc:
        db.rollback()
        return _settings_page(request, ctx, db, error=exc, status_code=422)
    return RedirectResponse("/admin/settings?notice=settings-saved", status_code=303)

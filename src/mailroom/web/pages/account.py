"""The signed-in user's own page: time zone, signature, API tokens (shown once when
created), password.

The time zone is the one times on every page are shown in (the `localtime` filter); until
the user picks one, the browser reports its own zone once (`POST /account/time-zone` with
`detected=true`, from app.js), which never overrides a choice (services.account). The
signature is appended to the mail the user writes (services.compose).

Changing the password asks for the current one, keeps this session, signs every other
session out and, with the box ticked, revokes all the user's API tokens
(security.auth.change_password). The API has no password route: tokens cannot change it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from mailroom.errors import MailroomError
from mailroom.security.auth import (
    change_password,
    create_api_token,
    list_api_tokens,
    revoke_api_token,
)
from mailroom.services.account import set_time_zone, time_zones
from mailroom.services.compose import set_signature, signature_of
from mailroom.web.deps import Csrf, Db, PageCtx
from mailroom.web.templating import render

router = APIRouter(prefix="/account")


def _account(request: Request, ctx: PageCtx, db: Db, **values: Any) -> Response:
    """The account page with the user's tokens; `values` set new_token, error, status_code."""
    return render(
        request,
        "account.html",
        ctx,
        nav="account",
        tokens=list_api_tokens(db, user=ctx.user),
        time_zones=time_zones(),
        signature=signature_of(db, user_id=ctx.user.id),
        **({"new_token": None, "error": None} | values),
    )


@router.get("")
def account_page(request: Request, ctx: PageCtx, db: Db) -> Response:
    return _account(request, ctx, db)


@router.post("/time-zone")
def time_zone(
    request: Request,
    ctx: Csrf,
    db: Db,
    time_zone: Annotated[str, Form(max_length=100)],
    detected: Annotated[bool, Form()] = False,
) -> Response:
    """Save the zone the user chose (or, `detected`, the browser's own if none is set)."""
    try:
        set_time_zone(db, user=ctx.user, time_zone=time_zone, only_if_unset=detected)
        db.commit()
    except MailroomError as exc:
        db.rollback()
        if detected:
            return Response(status_code=204)  # a browser's odd zone: pages stay in UTC
        return _account(request, ctx, db, status_code=422, error=exc)
    if detected:
        return Response(status_code=204)
    return RedirectResponse("/account?notice=time-zone-saved", status_code=303)


@router.post("/tokens")
def new_token(
    request: Request, ctx: Csrf, db: Db, name: Annotated[str, Form(max_length=100)] = ""
) -> Response:
    token, _row = create_api_token(db, user=ctx.user, name=name)
    db.commit()
    return _account(request, ctx, db, new_token=token)


@router.post("/tokens/{token_id}/revoke")
def revoke(ctx: Csrf, db: Db, token_id: int) -> Response:
    revoke_api_token(db, user=ctx.user, token_id=token_id)
    db.commit()
    return RedirectResponse("/account?notice=token-revoked", status_code=303)


@router.post("/password")
def new_password(
    request: Request,
    ctx: Csrf,
    db: Db,
    current_password: Annotated[str, Form(max_length=1000)],
    password: Annotated[str, Form(max_length=1000)],
    revoke_tokens: Annotated[bool, Form()] = False,
) -> Response:
    """Change the password (the current one first): other sessions end, tokens if asked."""
    try:
        revoked = change_password(
            db,
            user=ctx.user,
            current=current_password,
            password=password,
            keep=ctx.web_session,
            revoke_tokens=revoke_tokens,
        )
        db.commit()
    except MailroomError as exc:
        db.commit()  # only a wrong guess is pending: it counts towards the rate limit
        return _account(request, ctx, db, status_code=422, error=exc)
    notice = "password-saved-tokens-revoked" if revoked else "password-saved"
    return RedirectResponse(f"/account?notice={notice}", status_code=303)


@router.post("/signature")
def save_signature(
    request: Request,
    ctx: Csrf,
    db: Db,
    signature: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """Save the signature appended below what the user writes (after "-- ")."""
    try:
        set_signature(db, viewer=ctx.viewer, signature=signature)
    except MailroomError as exc:
        db.rollback()
        return _account(request, ctx, db, status_code=422, error=exc)
    return RedirectResponse("/account?notice=signature-saved#signature", status_code=303)

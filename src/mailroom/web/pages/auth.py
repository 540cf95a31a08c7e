"""Sign-in and sign-out pages.

The session cookie is `HttpOnly`, `SameSite=Lax`, and `Secure` whenever the request came
over https (directly or through a proxy setting X-Forwarded-Proto). The sign-in form is
protected by a double-submitted pre-session token (`mr_pre`), and a failed sign-in says
the same thing whether the address exists or not (security.auth).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from mailroom.errors import UserError
from mailroom.security.auth import authenticate, end_session, sign_in_failed, start_session
from mailroom.services.setup import setup_open
from mailroom.web.deps import PRE_COOKIE, SESSION_COOKIE, Csrf, Db, pre_session_csrf
from mailroom.web.templating import render_pre_session

router = APIRouter()


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _sign_in_page(
    request: Request,
    *,
    error: UserError | None = None,
    email: str = "",
    setup_pending: bool = False,
) -> Response:
    return render_pre_session(
        request,
        "signin.html",
        status_code=401 if error else 200,
        error=error,
        email=email,
        setup_pending=setup_pending,
    )


@router.get("/signin")
def sign_in_form(request: Request, db: Db) -> Response:
    return _sign_in_page(request, setup_pending=setup_open(db))


@router.post("/signin", dependencies=[Depends(pre_session_csrf)])
def sign_in(
    request: Request,
    db: Db,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1000)],
) -> Response:
    client = request.client.host if request.client else "unknown"
    try:
        user = authenticate(db, email=email, password=password, client=client)
    except UserError as exc:
        return _sign_in_page(request, error=exc, email=email)
    if user is None:
        db.commit()  # remember the failure for the rate limit
        return _sign_in_page(request, error=sign_in_failed(), email=email)
    new = start_session(db, user=user)
    db.commit()
    response = RedirectResponse("/records", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        new.cookie,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        expires=new.expires_at,
    )
    response.delete_cookie(PRE_COOKIE)
    return response


@router.post("/signout")
def sign_out(request: Request, ctx: Csrf, db: Db) -> Response:
    end_session(db, request.cookies.get(SESSION_COOKIE))
    db.commit()
    response = RedirectResponse("/signin?notice=signed-out", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/")
def home() -> Response:
    return RedirectResponse("/records", status_code=303)

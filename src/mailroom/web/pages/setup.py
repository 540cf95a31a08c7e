"""The first-run setup page: the first company, its domains and its first admin.

`mailroom serve` prints `/setup?token=…` while no user exists (services.setup); the page
answers 404 to any other token and once a user exists. The form is protected like the
sign-in form (the double-submitted `mr_pre` token, same origin), and a completed setup
signs the new admin in and lands on the dashboard.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from mailroom.errors import NotFound, UserError
from mailroom.security.auth import start_session
from mailroom.services.setup import FirstRun, SetupForm, check_setup, complete_setup
from mailroom.web.deps import PRE_COOKIE, SESSION_COOKIE, Db, pre_session_csrf
from mailroom.web.templating import render_pre_session

router = APIRouter()
_SPLIT = re.compile(r"[\s,;]+")


def _first_run(request: Request) -> FirstRun | None:
    first_run: FirstRun | None = getattr(request.app.state, "first_run", None)
    return first_run


def _page(
    request: Request, token: str, *, form: SetupForm | None = None, error: UserError | None = None
) -> Response:
    return render_pre_session(
        request,
        "setup.html",
        status_code=422 if error else 200,
        token=token,
        form=form,
        error=error,
    )


@router.get("/setup")
def setup_form(request: Request, db: Db, token: str = "") -> Response:
    check_setup(db, _first_run(request), token)
    return _page(request, token)


@router.post("/setup", dependencies=[Depends(pre_session_csrf)])
def setup(
    request: Request,
    db: Db,
    token: Annotated[str, Form(max_length=200)],
    company: Annotated[str, Form(max_length=200)],
    domains: Annotated[str, Form(max_length=2000)],
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1000)],
    name: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    form = SetupForm(
        company=company,
        domains=[d for d in _SPLIT.split(domains) if d],
        email=email,
        name=name,
        password=password,
    )
    try:
        user = complete_setup(db, first_run=_first_run(request), token=token, form=form)
    except UserError as exc:
        if isinstance(exc, NotFound):
            raise
        db.rollback()
        return _page(request, token, form=form, error=exc)
    new = start_session(db, user=user)
    db.commit()
    response = RedirectResponse("/records", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        new.cookie,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        expires=new.expires_at,
    )
    response.delete_cookie(PRE_COOKIE)
    return response

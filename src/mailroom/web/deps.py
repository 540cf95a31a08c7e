"""Typed dependencies of the web layer: the database session, the signed-in user, CSRF.

Routes declare what they need in their signature, so dependencies show where they are used:
`Db` for a session,
`PageCtx` for a signed-in browser (redirects to the sign-in page otherwise), `ApiCtx` for
a Bearer token (401 otherwise), `Csrf` on every state-changing page route.

Invariants:
- a state-changing page request needs the session's CSRF token (form field `csrf_token`
  or header `X-CSRF-Token`) AND, when the browser sends an Origin (or only a Referer), it
  must be this server's own — either failing answers 403 and changes nothing;
- what can be checked without the body (origin, session, the sign-in form's cookie) is
  checked before the form is parsed, and bodies are capped before they are read
  (web/limits.py);
- a session is one short database session per request; writes commit explicitly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from mailroom.app import App
from mailroom.crm.access import Viewer, viewer_for
from mailroom.db.models import Company, User
from mailroom.db.web_models import WebSession
from mailroom.security.auth import check_csrf, session_for_cookie, user_for_token
from mailroom.services.host_policy import ConnectLimiter, HostPolicy
from mailroom.services.outbox import failed_sends

SESSION_COOKIE = "mr_session"
PRE_COOKIE = "mr_pre"


class SignInRequired(Exception):
    """Raised by `PageCtx` when no valid session cookie came; answered with a redirect."""


class ApiUnauthorized(Exception):
    """Raised by `ApiCtx` without a valid Bearer token; answered with a JSON 401."""


class CsrfRejected(Exception):
    """A state-changing request without the right token or from a foreign origin."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def get_app(request: Request) -> App:
    app: App = request.app.state.mailroom
    return app


def get_db(request: Request) -> Iterator[Session]:
    with get_app(request).sessions() as session:
        yield session


Db = Annotated[Session, Depends(get_db)]
MailroomApp = Annotated[App, Depends(get_app)]


@dataclass
class Ctx:
    """Who is calling, in one value: user, their access view, company and (pages) session."""

    user: User
    viewer: Viewer
    company: Company
    web_session: WebSession | None = None
    failed_sends: int = 0  # the user's own sends that failed: a red banner on every page

    @property
    def csrf_token(self) -> str:
        return self.web_session.csrf_token if self.web_session else ""


def _ctx(db: Session, user: User, web_session: WebSession | None) -> Ctx:
    company = db.get(Company, user.company_id)
    assert company is not None  # users cascade with their company
    return Ctx(user=user, viewer=viewer_for(db, user), company=company, web_session=web_session)


def page_ctx(request: Request, db: Db) -> Ctx:
    found = session_for_cookie(db, request.cookies.get(SESSION_COOKIE))
    if found is None:
        raise SignInRequired()
    user, web_session = found
    ctx = _ctx(db, user, web_session)
    ctx.failed_sends = failed_sends(db, viewer=ctx.viewer)
    db.commit()  # end the read (SQLite: BEGIN IMMEDIATE) before a route talks to a server
    return ctx


def api_ctx(request: Request, db: Db) -> Ctx:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    user = user_for_token(db, token.strip()) if scheme.lower() == "bearer" else None
    if user is None:
        raise ApiUnauthorized()
    db.commit()  # last_used_at
    return _ctx(db, user, None)


PageCtx = Annotated[Ctx, Depends(page_ctx)]
ApiCtx = Annotated[Ctx, Depends(api_ctx)]


def host_policy(request: Request, ctx: Ctx) -> HostPolicy:
    """Where this dashboard or API user may make Mailroom connect, and how often: public
    hosts only unless the operator set MAILROOM_ALLOW_PRIVATE_HOSTS=1, the serve process's
    per-user rate limit, no server text from a failed greeting (services.host_policy)."""
    limiter: ConnectLimiter = request.app.state.connect_limiter
    return HostPolicy(
        allow_private=get_app(request).settings.allow_private_hosts,
        quiet_greetings=True,
        user_id=ctx.user.id,
        limiter=limiter,
    )


def same_origin(request: Request) -> bool:
    """True unless the browser says the request came from another origin (Origin/Referer)."""
    own = (request.url.scheme, request.url.netloc)
    origin = request.headers.get("origin")
    if origin is not None:
        parts = urlsplit(origin)
        return origin != "null" and (parts.scheme, parts.netloc) == own
    referer = request.headers.get("referer")
    if referer is not None:
        parts = urlsplit(referer)
        return (parts.scheme, parts.netloc) == own
    return True


async def csrf_protect(request: Request, ctx: PageCtx) -> Ctx:
    if not same_origin(request):
        raise CsrfRejected("The request came from another site.")
    given = request.headers.get("x-csrf-token")
    if given is None:
        form = await request.form()
        value = form.get("csrf_token")
        given = value if isinstance(value, str) else None
    if not check_csrf(ctx.csrf_token, given):
        raise CsrfRejected("The form's security token is missing or out of date.")
    return ctx


async def pre_session_csrf(request: Request) -> None:
    """The sign-in form's CSRF check: the double-submitted `mr_pre` cookie and same origin."""
    if not same_origin(request):
        raise CsrfRejected("The request came from another site.")
    expected = request.cookies.get(PRE_COOKIE, "")
    if not expected:  # refused before the body is read
        raise CsrfRejected("The form's security token is missing or out of date.")
    form = await request.form()
    value = form.get("csrf_token")
    if not isinstance(value, str) or not check_csrf(expected, value):
        raise CsrfRejected("The form's security token is missing or out of date.")


Csrf = Annotated[Ctx, Depends(csrf_protect)]

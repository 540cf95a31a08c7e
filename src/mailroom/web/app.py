"""The web application: dashboard pages, the REST API, static files, errors and headers.

`create_web_app(app)` builds one FastAPI application around an opened `App`. Pages and API
share the service layer (crm.access, crm, sync); this module only wires them and
turns errors into answers:

- `MailroomError` → JSON `{"error", "message", "hint"}` under /api (404 NotFound, 403
  Forbidden, 422 BadInput, 409 Conflict, 429 RateLimited with Retry-After, 502 mail
  server), or an error page with the same words;
- a missing/invalid token → 401 JSON with `WWW-Authenticate: Bearer`; no session → a
  redirect to the sign-in page; a CSRF failure → 403.
Every HTML answer carries a strict Content-Security-Policy (scripts only from /static),
`X-Frame-Options`, `nosniff` and `Referrer-Policy`, unless the route set its own CSP, and
every answer a `Server-Timing` header with the server time spent on it. Request bodies
are capped, and page forms screened, before anything reads them (web/limits.py).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import select
from starlette.exceptions import HTTPException as StarletteHTTPException

from mailroom import __version__
from mailroom.app import App
from mailroom.db.models import Mailbox
from mailroom.errors import (
    BadInput,
    Conflict,
    Forbidden,
    MailroomError,
    MailServerError,
    NotFound,
    RateLimited,
)
from mailroom.services.host_policy import ConnectLimiter
from mailroom.services.setup import FirstRun
from mailroom.web import api, pages
from mailroom.web.deps import ApiUnauthorized, CsrfRejected, SignInRequired
from mailroom.web.limits import BodyLimit
from mailroom.web.templating import is_htmx, render

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def _status(exc: MailroomError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, RateLimited):
        return 429
    if isinstance(exc, BadInput):
        return 422
    if isinstance(exc, MailServerError):
        return 502
    return 400 if exc.user_fixable else 500


def _back(request: Request) -> str | None:
    """The page the form was on (its path and query, from a same-origin Referer), so an
    error page offers a way back; None otherwise."""
    from urllib.parse import urlsplit

    referer = urlsplit(request.headers.get("referer", ""))
    if (referer.scheme, referer.netloc) != (request.url.scheme, request.url.netloc):
        return None
    if not referer.path.startswith("/") or referer.path.startswith("//"):
        return None
    return referer.path + (f"?{referer.query}" if referer.query else "")


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _error_json(status: int, kind: str, message: str, hint: str | None) -> JSONResponse:
    return JSONResponse({"error": kind, "message": message, "hint": hint}, status_code=status)


def create_web_app(app: App, *, first_run: FirstRun | None = None) -> FastAPI:
    """The dashboard and API around `app`; `first_run` holds `serve`'s one-time setup token
    (services.setup) while the install has no user."""
    web = FastAPI(
        title="Mailroom",
        version=__version__,
        description="Mailroom's REST API. Authenticate with `Authorization: Bearer TOKEN` "
        "(create one in the dashboard or with `mailroom token create --user EMAIL`).",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    web.state.mailroom = app
    web.state.first_run = first_run
    web.state.connect_limiter = ConnectLimiter()  # per serve process (services.host_policy)
    web.mount(
        "/static", StaticFiles(directory=str(Path(__file__).with_name("static"))), name="static"
    )
    web.include_router(api.router)
    web.include_router(pages.router)

    @web.exception_handler(MailroomError)
    async def mailroom_error(request: Request, exc: MailroomError) -> Response:
        status = _status(exc)
        response: Response
        if _is_api(request):
            response = _error_json(status, exc.kind, exc.message, exc.hint)
        else:
            response = render(
                request, "error.html", None, status_code=status, error=exc, back=_back(request)
            )
        if isinstance(exc, RateLimited):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @web.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body",))
            problems.append(f"{where}: {err.get('msg', 'invalid')}")
        message = "Bad input: " + "; ".join(problems[:5])
        hint = "Fix the named parameters; the OpenAPI schema at /api/v1/openapi.json lists them."
        if _is_api(request):
            return _error_json(422, "bad-input", message, hint)
        return render(request, "error.html", None, status_code=422, error=BadInput(message))

    @web.exception_handler(StarletteHTTPException)
    async def no_such_route(request: Request, exc: StarletteHTTPException) -> Response:
        """What routing itself refuses (no such path, a method the path does not take), in
        the same words as every other error: the API's JSON, the dashboard's page."""
        api = _is_api(request)
        where = f"{request.method} {request.url.path}"
        if exc.status_code == 404:
            kind, message = "not-found", f"No {'API route' if api else 'page'} {where}."
        elif exc.status_code == 405:
            kind, message = "bad-input", f"{where}: the method is not allowed here."
        else:
            kind, message = "bad-input", f"{where}: {exc.detail}"
        hint = (
            "The OpenAPI schema at /api/v1/openapi.json lists the routes and their methods."
            if api
            else "Check the address, or start again from the dashboard."
        )
        response: Response
        if api:
            response = _error_json(exc.status_code, kind, message, hint)
        else:
            error = NotFound(message, hint=hint) if kind == "not-found" else BadInput(message)
            response = render(request, "error.html", None, status_code=exc.status_code, error=error)
        response.headers.update(exc.headers or {})  # Allow, on a 405
        return response

    @web.exception_handler(ApiUnauthorized)
    async def unauthorized(_request: Request, _exc: ApiUnauthorized) -> Response:
        response = _error_json(
            401,
            "auth",
            "Missing or invalid API token.",
            "Send `Authorization: Bearer TOKEN`; create a token under Account → API tokens "
            "or with `mailroom token create --user EMAIL`.",
        )
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @web.exception_handler(SignInRequired)
    async def sign_in_required(request: Request, _exc: SignInRequired) -> Response:
        if is_htmx(request):
            return Response(status_code=204, headers={"HX-Redirect": "/signin"})
        return RedirectResponse("/signin", status_code=303)

    @web.exception_handler(CsrfRejected)
    async def csrf_rejected(request: Request, exc: CsrfRejected) -> Response:
        error = BadInput(exc.reason, hint="Reload the page and submit the form again.")
        return render(request, "error.html", None, status_code=403, error=error)

    web.add_middleware(BodyLimit)  # caps bodies before any route reads them (web/limits.py)

    @web.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        elapsed = (time.perf_counter() - started) * 1000
        response.headers["Server-Timing"] = f"app;dur={elapsed:.1f}"  # shown by browser devtools
        response.headers.setdefault("Content-Security-Policy", PAGE_CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @web.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, Any]:
        with app.sessions() as session:
            statuses = Counter(session.scalars(select(Mailbox.status)))
        return {"status": "ok", "version": __version__, "mailboxes": dict(statuses)}

    return web

"""Request bodies are capped before they are read, and forms are screened before parsing.

An unauthenticated 800 MB multipart `POST /signin` used to be spooled to disk before the
CSRF check, and a 400 MB JSON body read into memory before validation. `BodyLimit` is an
ASGI middleware that runs before any route:

- it picks the cap from the request alone: JSON and other bodies `JSON_LIMIT` (1 MB),
  forms (urlencoded or multipart) `FORM_LIMIT`; only a signed-in send (`/compose`, the
  API's `POST /api/v1/messages`) may carry attachments up to the outbox's largest message
  size (`send_limit`, from the provider presets);
- a `Content-Length` over the cap is answered 413 at once, without reading the body;
  a chunked body is counted as it streams and cut off with a 413 at the cap;
- a form posted to a page is screened first with what needs no body: from another site
  → 403, without a session cookie → the sign-in page (303), a form posted before any
  session exists (`PRE_SESSION_FORMS`: sign-in, first-run setup, alias confirmation)
  without its pre-session cookie → 403. The token itself (a form field) is then checked by the
  `Csrf` dependency on a body that is already bounded.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailroom.connectors.presets import PRESETS
from mailroom.web.deps import PRE_COOKIE, SESSION_COOKIE, same_origin

MB = 1024 * 1024

# Pages whose forms are posted before a session exists: they carry the pre-session token.
PRE_SESSION_FORMS = frozenset({"/signin", "/setup", "/aliases/confirm"})
JSON_LIMIT = 1 * MB
FORM_LIMIT = 64 * 1024
SEND_PATHS = ("/compose", "/api/v1/messages")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def send_limit() -> int:
    """A send's body cap: the largest message any provider takes, base64-encoded, plus text."""
    largest = max(preset.limits.message_bytes for preset in PRESETS.values())
    return largest * 4 // 3 + 4 * MB


def _is_form(request: Request) -> bool:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return kind in FORM_TYPES


def _signed_in(request: Request) -> bool:
    """Whether the request carries credentials (checked later; this only picks the cap)."""
    return bool(request.cookies.get(SESSION_COOKIE) or request.headers.get("authorization"))


def body_limit(request: Request) -> int:
    """The most body bytes this request may send."""
    if request.url.path in SEND_PATHS and request.method == "POST" and _signed_in(request):
        return send_limit()
    return FORM_LIMIT if _is_form(request) else JSON_LIMIT


def _declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


def too_large(request: Request, limit: int) -> Response:
    """The 413 answer: JSON under /api, plain text for pages."""
    message = f"The request body is larger than the {_size(limit)} this address accepts."
    hint = (
        "Send smaller attachments, or split the message."
        if request.url.path in SEND_PATHS
        else "Send less data in one request."
    )
    headers = {"Connection": "close", "X-Content-Type-Options": "nosniff"}
    if request.url.path.startswith("/api/"):
        body = {"error": "too-large", "message": message, "hint": hint}
        return JSONResponse(body, status_code=413, headers=headers)
    return PlainTextResponse(f"{message}\n{hint}\n", status_code=413, headers=headers)


def _size(limit: int) -> str:
    return f"{limit // MB} MB" if limit >= MB else f"{limit // 1024} KB"


def screen_form(request: Request) -> Response | None:
    """What to answer a page form post without reading it, or None to let it through."""
    if request.method in SAFE_METHODS or request.url.path.startswith("/api/"):
        return None
    if not _is_form(request):
        return None
    if not same_origin(request):
        return PlainTextResponse("The request came from another site.\n", status_code=403)
    if request.url.path in PRE_SESSION_FORMS:
        if not request.cookies.get(PRE_COOKIE):
            return PlainTextResponse(
                "The form's security token is missing or out of date.\n"
                "Reload the page and submit the form again.\n",
                status_code=403,
            )
        return None
    if not request.cookies.get(SESSION_COOKIE):
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={"HX-Redirect": "/signin"})
        return RedirectResponse("/signin", status_code=303)
    return None


class _Counted:
    """The body as it streams, cut off (as a disconnect) once it passes `limit` bytes."""

    def __init__(self, receive: Receive, limit: int) -> None:
        self.receive = receive
        self.limit = limit
        self.seen = 0
        self.exceeded = False

    async def __call__(self) -> Message:
        if self.exceeded:
            return {"type": "http.disconnect"}
        message = await self.receive()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.limit:
                self.exceeded = True
                return {"type": "http.disconnect"}
        return message


class BodyLimit:
    """ASGI middleware: caps every request body before the application reads it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        limit = body_limit(request)
        declared = _declared_length(request)
        early = screen_form(request)
        if early is None and declared is not None and declared > limit:
            early = too_large(request, limit)
        if early is not None:
            await early(scope, receive, send)
            return
        await self._counted(scope, receive, send, request, limit)

    async def _counted(
        self, scope: Scope, receive: Receive, send: Send, request: Request, limit: int
    ) -> None:
        body = _Counted(receive, limit)
        started = False

        async def guarded_send(message: Any) -> None:
            nonlocal started
            if body.exceeded and not started:
                return  # the application's answer to a cut-off body gives way to the 413
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, body, guarded_send)
        except Exception:
            if not body.exceeded or started:
                raise
        if body.exceeded and not started:
            await too_large(request, limit)(scope, receive, send)

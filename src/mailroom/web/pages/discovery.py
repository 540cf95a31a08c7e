"""The connect form's "Find settings": an address's servers filled in (services.discovery).

One POST route, two answers: the page's script asks with `Accept: application/json` and
fills the fields itself (the same JSON as `GET /api/v1/discover`); without JavaScript the
button submits the whole connect form here and the page comes back with the servers
filled in (the password is never echoed: it is typed after). Either way the answer says
which source gave the servers, and `oauth` names the provider whose sign-in button fits.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, Response

from mailroom.errors import MailroomError, RateLimited
from mailroom.services.discovery import discover, options_from
from mailroom.web.deps import Csrf, Db, get_app, host_policy
from mailroom.web.pages.mailboxes import Field, Short, _blank_form, _own_mailboxes, form_values
from mailroom.web.templating import render

router = APIRouter()
BLANK_SMTP = {"smtp_host": "", "smtp_port": 587, "smtp_security": "starttls"}


@router.post("/mailboxes/discover")
def find_settings(
    request: Request,
    ctx: Csrf,
    db: Db,
    discover_email: Field = "",
    protocol: Short = "imap",
    backfill: Short = "90",
    aliases: Annotated[str, Form(max_length=2000)] = "",
    allow_self_signed: Annotated[bool, Form()] = False,
    smtp_username: Field = "",
) -> Response:
    """Look the address's servers up; JSON for the script, else the page filled in."""
    wants_json = "application/json" in request.headers.get("accept", "")
    kept = {
        "discover_email": discover_email,
        "backfill": backfill,
        "aliases": aliases,
        "allow_self_signed": allow_self_signed,
        "smtp_username": smtp_username,
        "protocol": protocol if protocol in ("imap", "pop3") else "imap",
    }
    try:
        options = options_from(get_app(request).settings)
        found = discover(email=discover_email, network=host_policy(request, ctx), options=options)
    except MailroomError as exc:
        status = 429 if isinstance(exc, RateLimited) else 422
        if wants_json:
            return JSONResponse({"error": exc.message, "hint": exc.hint}, status_code=status)
        form = _blank_form(ctx) | kept
        return _page(request, ctx, db, form=form, found=None, error=exc, status=status)
    if wants_json:
        return JSONResponse(found)
    form = filled_form(_blank_form(ctx) | kept, found)
    return _page(request, ctx, db, form=form, found=found, error=None, status=200)


def filled_form(form: dict[str, Any], found: dict[str, Any]) -> dict[str, Any]:
    """The connect form with the servers `found` filled in (IMAP unless only POP3 is
    offered or POP3 was chosen and is offered); unchanged when nothing was found."""
    if not found["found"]:
        return form
    pop3 = found["pop3"] is not None and (form["protocol"] == "pop3" or found["imap"] is None)
    incoming = found["pop3"] if pop3 else found["imap"]
    filled = dict(form, preset=found["provider"] or "custom", username=found["username"])
    if incoming is not None:
        filled |= {
            "protocol": "pop3" if pop3 else "imap",
            "host": incoming["host"],
            "port": incoming["port"],
            "security": incoming["security"],
        }
    smtp = found["smtp"]
    filled |= (
        BLANK_SMTP
        if smtp is None
        else {
            "smtp_host": smtp["host"],
            "smtp_port": smtp["port"],
            "smtp_security": smtp["security"],
        }
    )
    return filled


def _page(
    request: Request,
    ctx: Csrf,
    db: Db,
    *,
    form: dict[str, Any],
    found: dict[str, Any] | None,
    error: MailroomError | None,
    status: int,
) -> Response:
    return render(
        request,
        "mailboxes.html",
        ctx,
        nav="mailboxes",
        status_code=status,
        mailboxes=_own_mailboxes(db, ctx),
        form=form,
        discovered=found,
        error=error,
        **form_values(),
    )

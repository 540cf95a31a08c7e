"""Jinja2 rendering for the pages: autoescaped templates, the signed-in context, notices.

`render` gives every template `ctx` (user, company, CSRF token), `nav` (the current
section) and `notice` (a message chosen by key from `NOTICES`, never text from the URL,
so a crafted link cannot put words on the page).
"""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context

from mailroom.matching.reasons import reason_words
from mailroom.web.deps import PRE_COOKIE, Ctx

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
PLURALS = {"opportunity": "opportunities"}


def plural(kind: str) -> str:
    """A record type's plural ("opportunities", not "opportunitys")."""
    return PLURALS.get(kind, f"{kind}s")


def local_time(value: datetime | date | str | None, zone: str | None) -> str:
    """A stored time (UTC, aware or naive, or its ISO text) as `YYYY-MM-DD HH:MM` in
    `zone` (UTC when unset or unknown); a date stays a date, text that is no time stays."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        text = value
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            return text
    if not isinstance(value, datetime):
        return value.isoformat()
    try:
        tz = ZoneInfo(zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo("UTC")
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.astimezone(tz).strftime("%Y-%m-%d %H:%M")


@pass_context
def viewer_time(context: Context, value: datetime | date | str | None) -> str:
    """The `localtime` filter: `value` in the signed-in user's time zone (issue 13)."""
    ctx = context.get("ctx")
    return local_time(value, ctx.user.time_zone if ctx is not None else None)


TEMPLATES.env.filters["reason"] = reason_words
TEMPLATES.env.filters["plural"] = plural
TEMPLATES.env.filters["localtime"] = viewer_time

NOTICES = {
    "connected": "Mailbox connected. Its first sync has started.",
    "sync-started": "Sync started. The status below updates by itself.",
    "sync-running": "A sync of this mailbox is already running.",
    "sharing-saved": "Sharing saved.",
    "disconnected": "Mailbox disconnected.",
    "user-added": "User added.",
    "role-saved": "Role saved.",
    "settings-saved": "Settings saved.",
    "token-revoked": "Token revoked.",
    "time-zone-saved": "Time zone saved: times on every page are shown in it.",
    "signed-out": "You are signed out.",
    "password-saved": "Password changed. Other sessions were signed out.",
    "password-saved-tokens-revoked": "Password changed. Other sessions were signed out and "
    "your API tokens revoked.",
    "mailbox-password-saved": "New password saved; the mailbox is enabled and syncing again.",
    "smtp-saved": "SMTP settings saved; this mailbox can send.",
    "sent": "Sent. It is on the timeline.",
    "queued": "Not sent yet: the server did not answer. Mailroom will try again.",
    "send-retrying": "Not sent: the mail server did not take the message. Mailroom tries "
    "again; the reason and the next attempt are below.",
    "retry-sent": "Sent. It is on the timeline.",
    "retry-waiting": "Still not sent; the reason is below.",
    "signature-saved": "Signature saved.",
    "send-dismissed": "Dismissed: that message will not be sent.",
    "feeds-saved": "Saved: mail of this mailbox links only to the record types ticked.",
    "rule-added": "Rule added.",
    "rule-removed": "Rule removed.",
    "rule-changed": "Rule changed; it keeps its name and its place in the order.",
    "rules-ordered": "Order saved.",
    "blocked": "Added to the blocklist.",
    "unblocked": "Removed from the blocklist.",
    "dropbox-rotated": "A new drop address was made; the old one no longer accepts mail.",
    "dropbox-saved": "Saved.",
    "oauth-connected": "Signed in and connected: the mailbox logged in and its first sync "
    "has started.",
    "oauth-reconnected": "Signed in again: the mailbox is enabled and syncing again.",
    "oauth-requested": "Sign-in requested: the user sees it on their My mailboxes page and "
    "gets a mail.",
    "record-created": "Record created; the mail already stored for its addresses is linked.",
    "record-saved": "Saved.",
    "record-deleted": "Record deleted. Its mail is kept.",
    "records-merged": "Merged: addresses, mail and everything attached moved here.",
    "server-search-started": "Searching the mailboxes on the server for older mail; "
    "what it finds appears on the timeline.",
    "task-saved": "Task saved.",
    "note-saved": "Note added.",
}

# Notices about mail that did not go: shown red (role=alert), never as a green success.
BAD_NOTICES = frozenset({"queued", "send-retrying", "retry-waiting"})


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def render(
    request: Request,
    template: str,
    ctx: Ctx | None,
    *,
    nav: str = "",
    status_code: int = 200,
    **values: Any,
) -> HTMLResponse:
    key = request.query_params.get("notice", "")
    notice = NOTICES.get(key)
    return TEMPLATES.TemplateResponse(
        request,
        template,
        {"ctx": ctx, "nav": nav, "notice": notice, "notice_bad": key in BAD_NOTICES, **values},
        status_code=status_code,
    )


def render_pre_session(
    request: Request, template: str, *, status_code: int = 200, **values: Any
) -> HTMLResponse:
    """A page whose form is posted before any session exists (sign-in, first-run setup):
    rendered with the double-submitted pre-session token, which is set (or renewed) as
    the `PRE_COOKIE` cookie for an hour."""
    token = request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(32)
    response = render(request, template, None, status_code=status_code, csrf_token=token, **values)
    response.set_cookie(
        PRE_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        max_age=3600,
    )
    return response

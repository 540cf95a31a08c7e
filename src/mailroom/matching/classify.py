"""Classify a parsed message: its direction, and whether a machine sent it in bulk or on
its own.

Direction, from the company's point of view:
- `internal`: every participant is internal (such mail is never logged nor linked);
- `outbound`: sent by someone internal (the mailbox owner, an alias, a colleague);
- `inbound`: everything else.

`automation_reason` recognises list, bulk and automatic mail by the headers their senders
are required or expected to write, and says which one it saw (shown by `mailroom why`):
- RFC 2919 `List-Id` (ezmlm's `Mailing-List`, `X-Mailing-List`) and RFC 2369
  `List-Unsubscribe` (mailing lists, newsletters);
- `Precedence: bulk | list | junk` (RFC 3834 §2 notes its common use);
- RFC 3834 §5 `Auto-Submitted` with any value but `no` (auto-replies, notifications);
- `X-Autoreply`, `X-Autorespond` (vacation responders that predate RFC 3834);
- delivery reports: RFC 6522 `multipart/report` (RFC 3464 DSNs, RFC 8098 MDNs, RFC 5965
  abuse reports) or a bare report part, Exim's
  `X-Failed-Recipients`, a `mailer-daemon` / `postmaster` sender (RFC 5321 §4.5.1), and
  an empty `Return-Path: <>` (the null reverse-path of RFC 5321 §4.5.5).
"""

from __future__ import annotations

from mailroom.mail.message import ParsedMessage
from mailroom.matching.directory import CompanyDirectory

BULK_PRECEDENCE = frozenset({"bulk", "list", "junk"})
DAEMON_LOCAL_PARTS = frozenset({"mailer-daemon", "postmaster", "mail-daemon"})
REPORT_TYPES = ("delivery-status", "disposition-notification")
REPORT_PARTS = frozenset(
    {"message/delivery-status", "message/disposition-notification", "message/feedback-report"}
)
LIST_HEADERS = ("list-id", "mailing-list", "x-mailing-list")


def classify_direction(parsed: ParsedMessage, directory: CompanyDirectory) -> str:
    people = {a.address for _, a in parsed.participants()}
    if people and all(directory.is_internal(p) for p in people):
        return "internal"
    sender = parsed.from_address
    if sender and directory.is_internal(sender):
        return "outbound"
    return "inbound"


def external_participants(
    parsed: ParsedMessage, directory: CompanyDirectory
) -> tuple[tuple[str, str], ...]:
    """(role, address) of every external participant, in header order, each pair once."""
    seen: dict[tuple[str, str], None] = {}
    for role, addr in parsed.participants():
        if not directory.is_internal(addr.address):
            seen.setdefault((role, addr.address), None)
    return tuple(seen)


def automation_reason(parsed: ParsedMessage) -> str | None:
    """Why the message looks like list, bulk or automatic mail, or None if it does not."""
    headers: dict[str, str] = {}
    for name, value in parsed.headers:
        headers.setdefault(name.strip().lower(), value.strip())
    for name in LIST_HEADERS:  # RFC 2919; ezmlm's Mailing-List; older X-Mailing-List
        if name in headers:
            return f"{name.title()}: {headers[name][:120]}"
    if "list-unsubscribe" in headers:
        return "List-Unsubscribe header"
    precedence = headers.get("precedence", "").lower()
    if precedence in BULK_PRECEDENCE:
        return f"Precedence: {precedence}"
    auto = headers.get("auto-submitted")
    if auto is not None and auto.split(";")[0].strip().lower() not in ("", "no"):
        return f"Auto-Submitted: {auto.split(';')[0].strip()[:60]}"
    for name in ("x-autoreply", "x-autorespond"):
        if name in headers:
            return f"{name.title()} header"
    content_type = headers.get("content-type", "").lower()
    if content_type.startswith("multipart/report") or any(
        f"report-type={t}" in content_type.replace('"', "") for t in REPORT_TYPES
    ):
        return "delivery report (multipart/report)"
    if content_type.split(";")[0].strip() in REPORT_PARTS:
        return f"delivery report ({content_type.split(';')[0].strip()})"
    if "x-failed-recipients" in headers:
        return "delivery report (X-Failed-Recipients)"
    sender = parsed.from_address or ""
    if sender.partition("@")[0] in DAEMON_LOCAL_PARTS:
        return f"sent by {sender}"
    if headers.get("return-path", "").replace(" ", "") == "<>":
        return "null Return-Path (a bounce)"
    return None

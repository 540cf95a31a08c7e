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
    """`internal`, `outbound` or `inbound`, as the module doc defines them."""
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
    """Why the message looks like list, bulk or automatic mail, or None if it does not.

    The checks run in the order of the module doc; the first that recognises the message
    gives the reason."""
    headers: dict[str, str] = {}
    for name, value in parsed.headers:
        headers.setdefault(name.strip().lower(), value.strip())
    for check in (_list_mail, _automatic_mail, _delivery_report):
        reason = check(headers)
        if reason is not None:
            return reason
    return _daemon_sender(parsed.from_address or "", headers)


def _list_mail(headers: dict[str, str]) -> str | None:
    """Mailing lists and bulk mail: List-Id and kin, List-Unsubscribe, Precedence."""
    for name in LIST_HEADERS:  # RFC 2919; ezmlm's Mailing-List; older X-Mailing-List
        if name in headers:
            return f"{name.title()}: {headers[name][:120]}"
    if "list-unsubscribe" in headers:
        return "List-Unsubscribe header"
    precedence = headers.get("precedence", "").lower()
    if precedence in BULK_PRECEDENCE:
        return f"Precedence: {precedence}"
    return None


def _automatic_mail(headers: dict[str, str]) -> str | None:
    """Auto-replies and notifications: RFC 3834 Auto-Submitted, X-Autoreply, X-Autorespond."""
    auto = headers.get("auto-submitted")
    if auto is not None and auto.split(";")[0].strip().lower() not in ("", "no"):
        return f"Auto-Submitted: {auto.split(';')[0].strip()[:60]}"
    for name in ("x-autoreply", "x-autorespond"):
        if name in headers:
            return f"{name.title()} header"
    return None


def _delivery_report(headers: dict[str, str]) -> str | None:
    """RFC 6522 multipart/report, a bare report part, or Exim's X-Failed-Recipients."""
    content_type = headers.get("content-type", "").lower()
    if content_type.startswith("multipart/report") or any(
        f"report-type={t}" in content_type.replace('"', "") for t in REPORT_TYPES
    ):
        return "delivery report (multipart/report)"
    if content_type.split(";")[0].strip() in REPORT_PARTS:
        return f"delivery report ({content_type.split(';')[0].strip()})"
    if "x-failed-recipients" in headers:
        return "delivery report (X-Failed-Recipients)"
    return None


def _daemon_sender(sender: str, headers: dict[str, str]) -> str | None:
    """A mailer-daemon / postmaster sender, or the null reverse-path (RFC 5321 §4.5.5)."""
    if sender.partition("@")[0] in DAEMON_LOCAL_PARTS:
        return f"sent by {sender}"
    if headers.get("return-path", "").replace(" ", "") == "<>":
        return "null Return-Path (a bounce)"
    return None

"""Turn a forwarded message back into the message that was forwarded.

A user who forwards a customer's mail to the drop address wants the customer's mail on
the timeline, not their own forward. Two shapes exist:

- attached (message/rfc822, RFC 2046 §5.2.1): the original, complete with its
  Message-ID, is inside — it is taken as it is, so a later sync of the same mail finds it
  already stored;
- inline: the client quoted the original's headers under a separator line — Gmail's
  `---------- Forwarded message ---------`, Outlook's `-----Original Message-----`,
  Apple Mail's `Begin forwarded message:` — followed by `From:`, `Date:`/`Sent:`,
  `Subject:`, `To:`, `Cc:` lines and the body. A new RFC 5322 message is rebuilt from those
  lines (the original had a Message-ID the forward does not carry, so its identity is a
  fingerprint).

Everything read from a forward is untrusted: addresses go through parse_address_list
(normalised, IDNA), control characters are dropped, and the rebuilt message is made with
the `email` package under verify_generated_headers, so no header can be injected.
"""

from __future__ import annotations

import re
from datetime import datetime
from email import message_from_bytes, policy
from email.errors import HeaderWriteError
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage, Message
from email.utils import format_datetime, parsedate_to_datetime

from mailroom.mail.addresses import parse_address_list
from mailroom.mail.message import Address

BUILD_POLICY = policy.SMTP.clone(cte_type="7bit", verify_generated_headers=True)
_SEPARATORS = re.compile(
    r"^[ \t>]*(?:-{3,}\s*(?:Forwarded message|Original Message)\s*-{3,}"
    r"|Begin forwarded message:)[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
_FIELD = re.compile(r"^[ \t>]*([A-Za-z-]{2,12}):[ \t]*(.*)$")
_MAILTO = re.compile(r"\[mailto:([^\]\s]+)\]", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_TAGS = re.compile(r"<[^>]*>")
_FIELD_NAMES = {
    "from": "from",
    "to": "to",
    "cc": "cc",
    "subject": "subject",
    "date": "date",
    "sent": "date",
    "reply-to": "reply-to",
}
_DATE_FORMATS = (
    "%a, %b %d, %Y at %I:%M %p",  # Gmail: Mon, Jan 5, 2026 at 9:30 AM
    "%A, %B %d, %Y %I:%M %p",  # Outlook: Monday, January 5, 2026 9:30 AM
    "%A, %B %d, %Y at %I:%M %p",
    "%B %d, %Y at %I:%M:%S %p %Z",  # Apple Mail: January 5, 2026 at 9:30:00 AM GMT
    "%B %d, %Y at %I:%M %p",
    "%d %B %Y at %H:%M",
    "%Y-%m-%d %H:%M",
)


def unwrap(data: bytes) -> bytes | None:
    """The forwarded original inside `data` (attached first, then inline), or None."""
    msg = message_from_bytes(data, policy=policy.compat32)
    attached = _attached(msg)
    if attached is not None:
        return attached
    text = _first_text(msg)
    return _inline(text, fallback_date=msg.get("Date")) if text else None


def _attached(msg: Message) -> bytes | None:
    for part in msg.walk():
        if part.get_content_type() != "message/rfc822":
            continue
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        if isinstance(inner, Message):
            raw = inner.as_bytes()
            if raw.strip():
                return raw
    return None


def _first_text(msg: Message) -> str:
    """The first text/plain body (else text/html, tags stripped), decoded."""
    for wanted in ("text/plain", "text/html"):
        for part in msg.walk():
            if part.get_content_type() != wanted or part.get_filename():
                continue
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes):
                continue
            charset = part.get_content_charset() or "utf-8"
            try:
                text = payload.decode(charset, "replace")
            except LookupError:
                text = payload.decode("utf-8", "replace")
            return _TAGS.sub("", text) if wanted == "text/html" else text
    return ""


def _clean(value: str) -> str:
    return " ".join(_CONTROL.sub(" ", value).split())


def _people(value: str) -> tuple[Address, ...]:
    return parse_address_list(_MAILTO.sub(r"<\1>", value).replace(";", ","))


def _date(value: str) -> datetime | None:
    value = _clean(value).replace("\u202f", " ")
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        pass
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            continue
    return None


def _inline(text: str, *, fallback_date: str | None) -> bytes | None:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    match = _SEPARATORS.search(text)
    if match is None:
        return None
    lines = text[match.end() :].lstrip("\n").split("\n")
    fields: dict[str, str] = {}
    index = 0
    for index, line in enumerate(lines):  # noqa: B007 - index is used after the loop
        if not line.strip():
            if fields:
                break
            continue
        found = _FIELD.match(line)
        if found is None:
            break
        name = _FIELD_NAMES.get(found.group(1).lower())
        if name is not None and name not in fields:
            fields[name] = found.group(2)
    else:
        index = len(lines)
    senders = _people(fields.get("from", ""))
    if not senders:
        return None
    body = "\n".join(line[2:] if line.startswith("> ") else line for line in lines[index:])
    return _build(fields, senders[0], body.strip("\n") + "\n", fallback_date) or None


def _build(fields: dict[str, str], sender: Address, body: str, fallback: str | None) -> bytes:
    msg = EmailMessage(policy=BUILD_POLICY)
    try:
        msg["From"] = _header_address(sender)
        for role in ("to", "cc", "reply-to"):
            people = _people(fields.get(role, ""))
            if people:
                msg[role.title()] = tuple(_header_address(p) for p in people)
        msg["Subject"] = _clean(fields.get("subject", ""))
        when = _date(fields["date"]) if "date" in fields else None
        if when is not None:
            msg["Date"] = format_datetime(when)
        elif fallback:
            msg["Date"] = _clean(fallback)
        msg.set_content(body)
        return msg.as_bytes(policy=BUILD_POLICY)
    except (HeaderWriteError, ValueError, IndexError):
        return b""


def _header_address(person: Address) -> HeaderAddress:
    local, _, domain = person.address.rpartition("@")
    return HeaderAddress(display_name=_clean(person.name), username=local, domain=domain)

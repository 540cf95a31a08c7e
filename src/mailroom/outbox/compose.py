"""Compose an outgoing message: validated people, safe headers, threading, a stable Message-ID.

Nothing typed by a user can become a header of its own (header injection):
- every address goes through mail.addresses.normalise (no CR, LF, control or space) and
  is set as a `headerregistry.Address`, so display names are quoted / RFC 2047-encoded by
  the `email` package, never pasted;
- a subject, display name or file name holding a line break or another control character
  is refused (file names are cleaned instead, they come from the disk);
- the message is serialised with `policy.SMTP` with `verify_generated_headers` (the
  CVE-2024-6923 fix, required by mailroom.runtime): a header that would fold into a new
  header raises instead of being written.
Bodies: text is re-encoded by the `email` package (quoted-printable or base64 for anything
that is not short 7-bit lines, `cte_type="7bit"`), so body bytes on the wire are CRLF text
the SMTP connector then dot-stuffs (RFC 5321 §4.5.2). An HTML body always goes out as
multipart/alternative with a text part; when only HTML was written, that text part is made
from it (`html_to_text`).

Threading (RFC 5322 §3.6.4): a reply carries `In-Reply-To: <parent>` and `References:` the
parent's References plus the parent's id; its subject gets one "Re: " unless it has one.
A message sent from a case carries `[Case #ID]` in its subject, so replies find the case.

`data` is the copy for the Sent folder and the timeline, *with* Bcc (as mail clients keep
it); `wire_bytes(data)` is what goes to the SMTP server, the Bcc header cut out (§3.6.3).
"""

from __future__ import annotations

import html as htmllib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.errors import HeaderWriteError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses

import nh3

from mailroom.errors import BadInput
from mailroom.mail.addresses import normalise

SEND_POLICY = policy.SMTP.clone(cte_type="7bit", verify_generated_headers=True)
MAX_REFERENCES = 20
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # every control but TAB
_FILENAME_BAD = re.compile(r"[\x00-\x1f\x7f/\\\"]")
_REPLY_PREFIX = re.compile(r"^\s*(re|aw|sv|antw|r)(\[\d+\])?\s*:", re.IGNORECASE)
CASE_REF = re.compile(r"\[Case #(\d+)\]")
# Where a line ends in the text made from HTML: breaks and the ends of block elements.
_BLOCK_END = re.compile(
    r"<br\s*/?>|</(?:p|div|li|tr|h[1-6]|blockquote|pre|table|ul|ol|section|article)\s*>",
    re.IGNORECASE,
)
_UNSEEN = {"head", "title", "script", "style", "template"}  # their content is not shown


@dataclass(frozen=True, slots=True)
class FileAttachment:
    """An attachment to send: its name, MIME type and bytes."""

    filename: str
    content_type: str
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Parent:
    """The logged message a reply answers (ids without angle brackets)."""

    message_id: str
    references: tuple[str, ...] = ()
    subject: str = ""


@dataclass(frozen=True, slots=True)
class Draft:
    """What the user asked to send, before validation."""

    from_address: str
    from_name: str
    to: Sequence[str]
    subject: str
    text: str
    cc: Sequence[str] = ()
    bcc: Sequence[str] = ()
    html: str | None = None
    attachments: Sequence[FileAttachment] = ()
    parent: Parent | None = None
    case_id: int | None = None


@dataclass(frozen=True, slots=True)
class Composed:
    """A message ready to queue: its id, bytes (with Bcc) and envelope recipients."""

    message_id: str
    data: bytes = field(repr=False)
    recipients: tuple[str, ...]
    subject: str
    sender: str


def parse_person(value: str, *, role: str) -> Address:
    """`addr` or `Name <addr>` as an Address; BadInput for anything else."""
    if _CONTROL.search(value):
        raise BadInput(
            f"The {role} address {value!r} contains a line break or control character.",
            hint="Give one plain address per option, e.g. --to jo@example.com.",
        )
    pairs = getaddresses([value], strict=True)
    if len(pairs) != 1 or pairs[0] == ("", ""):
        raise BadInput(
            f"{value!r} is not one email address ({role}).",
            hint="Give one address per option, e.g. --to 'Jo Client <jo@example.com>'.",
        )
    name, raw = pairs[0]
    address = normalise(raw)
    if address is None:
        raise BadInput(f"{raw!r} is not an email address ({role}).")
    local, _, domain = address.rpartition("@")
    try:
        return Address(display_name=name.strip(), username=local, domain=domain)
    except (ValueError, IndexError) as exc:
        raise BadInput(f"{value!r} is not a usable email address ({role}).") from exc


def check_subject(subject: str) -> str:
    if _CONTROL.search(subject):
        raise BadInput(
            "The subject contains a line break or control character.",
            hint="Write the subject on one line.",
        )
    return subject.strip()


def reply_subject(subject: str) -> str:
    """`subject` with one leading "Re: " (none added when it already has a reply prefix)."""
    return subject if _REPLY_PREFIX.match(subject) else f"Re: {subject}"


def with_case_reference(subject: str, case_id: int) -> str:
    tag = f"[Case #{case_id}]"
    return subject if tag in subject else f"{subject} {tag}".strip()


def safe_filename(name: str) -> str:
    cleaned = _FILENAME_BAD.sub("_", name).strip(" .")
    return cleaned[:200] or "attachment"


def new_message_id(sender: str) -> str:
    """A fresh, globally unique id on the sender's domain (RFC 5322 §3.6.4)."""
    domain = sender.rpartition("@")[2] or "mailroom.invalid"
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    return f"{stamp}.{secrets.token_hex(12)}.mailroom@{domain}"


def html_to_text(markup: str) -> str:
    """A plain-text alternative of an HTML body: the text a reader sees, one line per block.

    nh3 (the ammonia sanitiser) drops every tag, comments, and the content of `head`,
    `title`, `script`, `style` and `template`; the entities it leaves are unescaped once.
    No markup survives, so the result is plain text whatever the HTML held."""
    marked = _BLOCK_END.sub(lambda m: m.group(0) + "\n", markup)
    text = htmllib.unescape(nh3.clean(marked, tags=set(), clean_content_tags=_UNSEEN))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def compose(
    draft: Draft, *, now: datetime | None = None, message_id: str | None = None
) -> Composed:
    """Validate `draft` and build the message; BadInput names the first problem found."""
    sender = parse_person(
        f"{draft.from_name} <{draft.from_address}>" if draft.from_name else draft.from_address,
        role="from",
    )
    if _CONTROL.search(draft.from_name):
        raise BadInput("The sender's name contains a line break or control character.")
    groups = {
        role: [parse_person(v, role=role) for v in values]
        for role, values in (("to", draft.to), ("cc", draft.cc), ("bcc", draft.bcc))
    }
    if not groups["to"] and not groups["cc"] and not groups["bcc"]:
        raise BadInput("A message needs at least one recipient.", hint="Add --to ADDRESS.")
    recipients = tuple(dict.fromkeys(a.addr_spec for g in groups.values() for a in g))
    subject = check_subject(draft.subject)
    parent = draft.parent
    if parent is not None:
        subject = reply_subject(subject or parent.subject)
    if draft.case_id is not None:
        subject = with_case_reference(subject, draft.case_id)
    mid = message_id or new_message_id(sender.addr_spec)

    msg = EmailMessage(policy=SEND_POLICY)
    try:
        msg["From"] = sender
        for role in ("to", "cc", "bcc"):
            if groups[role]:
                msg[role.capitalize()] = tuple(groups[role])
        msg["Subject"] = subject
        msg["Date"] = format_datetime(now or datetime.now(UTC))
        msg["Message-ID"] = f"<{mid}>"
        if parent is not None and parent.message_id:
            chain = [*parent.references, parent.message_id]
            if len(chain) > MAX_REFERENCES:  # keep the root and the latest (§3.6.4 allows)
                chain = [chain[0], *chain[-(MAX_REFERENCES - 1) :]]
            msg["In-Reply-To"] = f"<{parent.message_id}>"
            msg["References"] = " ".join(f"<{ref}>" for ref in dict.fromkeys(chain))
        text = draft.text
        if draft.html and not text.strip():  # RFC 2046 §5.1.4: a plain part for every reader
            text = html_to_text(draft.html)
        msg.set_content(text)
        if draft.html:
            msg.add_alternative(draft.html, subtype="html")
        for att in draft.attachments:
            maintype, _, subtype = att.content_type.partition("/")
            msg.add_attachment(
                att.data,
                maintype=maintype or "application",
                subtype=subtype or "octet-stream",
                filename=safe_filename(att.filename),
            )
        data = msg.as_bytes(policy=SEND_POLICY)
    except (HeaderWriteError, ValueError) as exc:
        raise BadInput(f"The message could not be built safely: {exc}") from exc
    return Composed(
        message_id=mid,
        data=data,
        recipients=recipients,
        subject=subject,
        sender=sender.addr_spec,
    )


def wire_bytes(data: bytes) -> bytes:
    """`data` without its Bcc header (and that header's folded lines), for the SMTP server."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return data
    out: list[bytes] = []
    skipping = False
    for line in data[:end].split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if not skipping:
                out.append(line)
            continue
        skipping = line.lower().startswith(b"bcc:")
        if not skipping:
            out.append(line)
    return b"\r\n".join(out) + data[end:]

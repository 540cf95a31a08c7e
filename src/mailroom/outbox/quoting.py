"""The body of a reply or forward: what the user wrote, their signature, the original.

Order (as mail programs write it, "bottom-posting" of the quote): the user's text; then the
signature after the RFC 3676 §4.3 separator line "-- " (dash dash space); then the quoted
original. For text the original is introduced by "On DATE, NAME wrote:" and every line is
prefixed "> " (RFC 3676 quoting); a forward has a "Forwarded message" header block instead.
For HTML the original's HTML is sanitised (mail.html; remote images dropped) and put in a
`<blockquote type="cite">`; the user's text and the signature are escaped, never markup.
Pure functions: no database, no network.
"""

from __future__ import annotations

import html as htmllib
import re
from dataclasses import dataclass
from datetime import datetime

from mailroom.mail.html import BLOCKED_IMAGE, sanitise_html

SIGNATURE_SEPARATOR = "-- "
MAX_SIGNATURE = 2000
MAX_QUOTED = 200_000  # characters of the original kept in a quote
_FORWARD_PREFIX = re.compile(r"^\s*(fwd?|wg|tr|rv)\s*:", re.IGNORECASE)
# The dashboard's stand-in for a blocked remote image means nothing in mail sent out.
_PLACEHOLDER = re.compile(r"<img[^>]*" + re.escape(BLOCKED_IMAGE) + r"[^>]*>")


@dataclass(frozen=True, slots=True)
class Original:
    """The message answered or forwarded, as the quote shows it."""

    sender: str
    sender_name: str
    date: datetime | None
    subject: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    text: str
    html: str


def forward_subject(subject: str) -> str:
    """`subject` with one leading "Fwd: " (none added when it already has one)."""
    return subject if _FORWARD_PREFIX.match(subject) else f"Fwd: {subject}".strip()


def _when(date: datetime | None) -> str:
    return date.strftime("%a, %d %b %Y at %H:%M %Z").strip() if date else "an unknown date"


def attribution(original: Original) -> str:
    """`On Mon, 02 Mar 2026 at 09:00 UTC, Jo Client <jo@x> wrote:`."""
    who = original.sender_name or original.sender or "someone"
    if original.sender_name and original.sender:
        who = f"{original.sender_name} <{original.sender}>"
    return f"On {_when(original.date)}, {who} wrote:"


def quote_text(original: Original) -> str:
    """The attribution line and the original's text with every line prefixed "> "."""
    body = original.text[:MAX_QUOTED].replace("\r\n", "\n").rstrip("\n")
    lines = [("> " + line) if line else ">" for line in body.split("\n")] if body else [">"]
    return attribution(original) + "\n" + "\n".join(lines) + "\n"


def forward_header(original: Original) -> list[str]:
    """The lines that introduce a forwarded message (From, Date, Subject, To, Cc)."""
    who = original.sender
    if original.sender_name:
        who = f"{original.sender_name} <{original.sender}>"
    lines = [
        "---------- Forwarded message ----------",
        f"From: {who}",
        f"Date: {_when(original.date)}",
        f"Subject: {original.subject}",
        f"To: {', '.join(original.to)}",
    ]
    if original.cc:
        lines.append(f"Cc: {', '.join(original.cc)}")
    return lines


def forward_text(original: Original) -> str:
    """The forwarded message as text: the header block, a blank line, its text unchanged."""
    body = original.text[:MAX_QUOTED].replace("\r\n", "\n").rstrip("\n")
    return "\n".join(forward_header(original)) + "\n\n" + body + "\n"


def signature_block(signature: str) -> str:
    """ "-- " and the signature on the lines below it; "" for no signature."""
    sig = signature.replace("\r\n", "\n").strip("\n")
    if not sig.strip():
        return ""
    return f"{SIGNATURE_SEPARATOR}\n{sig}\n"


def text_body(text: str, *, signature: str = "", quoted: str = "") -> str:
    """The text part: what the user wrote, the signature below it, the quote below that."""
    parts = [text.replace("\r\n", "\n").rstrip("\n") + "\n"]
    block = signature_block(signature)
    if block:
        parts.append("\n" + block)
    if quoted:
        parts.append("\n" + quoted)
    return "".join(parts)


def _paragraphs(text: str) -> str:
    escaped = htmllib.escape(text.replace("\r\n", "\n").strip("\n"))
    return "".join(f"<p>{part.replace(chr(10), '<br>')}</p>" for part in escaped.split("\n\n"))


def html_body(
    *, text: str, html: str | None, signature: str, original: Original | None, forward: bool
) -> str:
    """The HTML part: the user's HTML (or their text, escaped), the signature (escaped),
    then the original sanitised in a blockquote (a forward: after its header block)."""
    parts = [html if html else _paragraphs(text)]
    if signature.strip():
        sig = htmllib.escape(signature.replace("\r\n", "\n").strip("\n")).replace("\n", "<br>")
        parts.append(f'<div class="signature">{SIGNATURE_SEPARATOR}<br>{sig}</div>')
    if original is not None:
        inner = (
            _PLACEHOLDER.sub("", sanitise_html(original.html[:MAX_QUOTED]).html)
            if original.html.strip()
            else _paragraphs(original.text[:MAX_QUOTED])
        )
        if forward:
            head = "<br>".join(htmllib.escape(line) for line in forward_header(original))
            parts.append(f'<div>{head}</div><blockquote type="cite">{inner}</blockquote>')
        else:
            parts.append(
                f"<div>{htmllib.escape(attribution(original))}</div>"
                f'<blockquote type="cite">{inner}</blockquote>'
            )
    return "\n".join(parts)

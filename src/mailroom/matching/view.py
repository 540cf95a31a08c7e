"""`MailView`: one message as filters and rules see it, whatever path it came by.

Ingestion builds it from the fresh parse; `rules test` from a stored message's raw bytes.
It holds the message and its place (direction, the mailbox and that mailbox's own
addresses), plus lazily derived text for body conditions: the plain text part, or the HTML
part stripped of tags when there is no plain text. Body text is capped (`MAX_BODY`) so a
user's pattern never runs over megabytes of untrusted input.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from functools import cached_property

from mailroom.mail.message import ParsedMessage

MAX_BODY = 100_000
_TAG = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]*>", re.IGNORECASE | re.DOTALL)
_BLANKS = re.compile(r"[ \t\r\f\v]+")


def html_to_text(value: str) -> str:
    """Visible text of an HTML body, good enough for pattern matching (not for display)."""
    text = _TAG.sub(" ", value[: MAX_BODY * 4])
    return _BLANKS.sub(" ", html.unescape(text))


@dataclass(frozen=True)
class MailView:
    """A parsed message in its context (direction, mailbox) for filters and rules."""

    parsed: ParsedMessage
    direction: str
    mailbox_id: int | None = None
    mailbox_address: str | None = None
    own_addresses: frozenset[str] = field(default_factory=frozenset)
    automated: str | None = None

    @cached_property
    def body(self) -> str:
        text = self.parsed.text or html_to_text(self.parsed.html)
        return text[:MAX_BODY]

    @cached_property
    def header_map(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for name, value in self.parsed.headers:
            found.setdefault(name.strip().lower(), []).append(value.strip())
        return found

    def addresses(self, role: str) -> tuple[str, ...]:
        """Addresses in one role: from, to, cc, bcc, reply-to, sender."""
        return tuple(a.address for r, a in self.parsed.participants() if r == role)

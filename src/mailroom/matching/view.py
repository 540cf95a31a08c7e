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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property

from mailroom.mail.message import ParsedMessage
from mailroom.mail.parse import STRUCTURED_HEADERS

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
    # When `parsed` holds headers only (mail.parse.parse_headers): the complete parse,
    # made once and only if a condition needs the body, attachments or a lazy header.
    content_loader: Callable[[], ParsedMessage] | None = field(
        default=None, compare=False, repr=False
    )

    @cached_property
    def content(self) -> ParsedMessage:
        """The complete parse: `parsed` itself unless that holds headers only."""
        return self.parsed if self.content_loader is None else self.content_loader()

    @property
    def content_loaded(self) -> bool:
        """Whether a condition made the complete parse of a header-only message."""
        return self.content_loader is not None and "content" in self.__dict__

    @cached_property
    def body(self) -> str:
        """The body text (the HTML's text when there is no plain part), capped at MAX_BODY."""
        text = self.content.text or html_to_text(self.content.html)
        return text[:MAX_BODY]

    @cached_property
    def header_map(self) -> dict[str, list[str]]:
        """Every header by lower-cased name, each with all its values in order."""
        return _by_name(self.parsed.headers)

    @cached_property
    def _full_header_map(self) -> dict[str, list[str]]:
        return _by_name(self.content.headers)

    def header_values(self, name: str) -> list[str]:
        """Every value of header `name` (lower-case), decoded, in message order."""
        if self.content_loader is not None and name in STRUCTURED_HEADERS:
            return self._full_header_map.get(name, [])
        return self.header_map.get(name, [])

    def addresses(self, role: str) -> tuple[str, ...]:
        """Addresses in one role: from, to, cc, bcc, reply-to, sender."""
        return tuple(a.address for r, a in self.parsed.participants() if r == role)


def _by_name(headers: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Headers by lower-cased name, each with all its values in order (both stripped)."""
    found: dict[str, list[str]] = {}
    for name, value in headers:
        found.setdefault(name.strip().lower(), []).append(value.strip())
    return found

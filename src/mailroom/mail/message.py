"""The typed values a raw message becomes once parsed (RawMessage → ParsedMessage).

Where they sit on the message path: docs/architecture.md; why headers are parsed on
ingest and bodies on read: docs/decisions/0006-header-only-parse-on-ingest.md.

Every field is already decoded (RFC 2047 words, charsets) and normalised where matching
needs it (addresses lower-cased with IDNA domains, Message-IDs without angle brackets).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from operator import attrgetter
from typing import Any


@dataclass(frozen=True, slots=True)
class Address:
    """One mailbox in a header: `address` is normalised (see addresses.normalise)."""

    address: str
    name: str = ""

    def __str__(self) -> str:
        return f"{self.name} <{self.address}>" if self.name else self.address

    def __reduce__(self) -> tuple[type[Address], tuple[str, str]]:
        # Pickled as a constructor call: see ParsedMessage.__reduce__.
        return Address, (self.address, self.name)


@dataclass(frozen=True, slots=True)
class AttachmentInfo:
    """An attachment's metadata and decoded bytes (bytes go to the blob store)."""

    filename: str
    content_type: str
    size: int
    data: bytes = field(repr=False, default=b"")
    content_id: str | None = None
    inline: bool = False


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """A message after parsing: identity, people, text, HTML and attachments.

    `message_id` is the Message-ID without angle brackets or, when the header is missing or
    unusable, a stable fingerprint `fp-<hex>@mailroom.invalid` of Date, From, To, Subject and
    body, so the same message fetched twice gets the same identity. `parse_error` is set
    when the message could only be read in part; such a message is still stored, raw.
    """

    message_id: str
    message_id_generated: bool
    date: datetime | None
    subject: str
    from_: tuple[Address, ...]
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    bcc: tuple[Address, ...] = ()
    reply_to: tuple[Address, ...] = ()
    sender: tuple[Address, ...] = ()
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    text: str = ""
    html: str = ""
    attachments: tuple[AttachmentInfo, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    size: int = 0
    parse_error: str | None = None
    defects: tuple[str, ...] = ()

    def __reduce__(self) -> tuple[type[ParsedMessage], tuple[Any, ...]]:
        # The fetch workers pickle every parse (sync/fetch_worker.py). A slots dataclass
        # pickles its state through Python-level __getstate__/__setstate__ (a `fields()`
        # call per object); a constructor call with the values in order is twice as cheap
        # to dump and a third cheaper to load.
        return ParsedMessage, _parsed_values(self)

    @property
    def from_address(self) -> str | None:
        return self.from_[0].address if self.from_ else None

    def participants(self) -> tuple[tuple[str, Address], ...]:
        """Every (role, address) pair: from, to, cc, bcc, reply-to, sender."""
        roles = (
            ("from", self.from_),
            ("to", self.to),
            ("cc", self.cc),
            ("bcc", self.bcc),
            ("reply-to", self.reply_to),
            ("sender", self.sender),
        )
        return tuple((role, a) for role, addrs in roles for a in addrs)


_parsed_values = attrgetter(*(f.name for f in fields(ParsedMessage)))

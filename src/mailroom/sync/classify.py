"""Direction of a message from the company's point of view.

- `internal`: every participant is internal (such mail never links to a record);
- `outbound`: sent by someone internal (the mailbox owner, an alias, a colleague);
- `inbound`: everything else.
"""

from __future__ import annotations

from mailroom.mail.message import ParsedMessage
from mailroom.matching.directory import CompanyDirectory


def classify_direction(parsed: ParsedMessage, directory: CompanyDirectory) -> str:
    people = {a.address for _, a in parsed.participants()}
    if people and all(directory.is_internal(p) for p in people):
        return "internal"
    sender = parsed.from_address
    if sender and directory.is_internal(sender):
        return "outbound"
    return "inbound"


def external_addresses(parsed: ParsedMessage, directory: CompanyDirectory) -> list[str]:
    """The participants that may link to records, in header order, without duplicates."""
    seen: dict[str, None] = {}
    for _, addr in parsed.participants():
        if not directory.is_internal(addr.address):
            seen.setdefault(addr.address, None)
    return list(seen)

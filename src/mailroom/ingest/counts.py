"""What storing mail added, counted: the part a batch's result and a folder's report share.

A module of its own (no imports of Mailroom's) so that `sync.context` can build its reports
on it without importing ingest's pipeline before there is mail to store.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True, kw_only=True)
class IngestCounts:
    """New messages, copies and links, and the messages that failed to parse."""

    messages: int = 0
    copies: int = 0
    links: int = 0
    parse_errors: int = 0

    def add_counts(self, other: IngestCounts) -> None:
        """Add another count (a batch's) to this one (a folder's)."""
        self.messages += other.messages
        self.copies += other.copies
        self.links += other.links
        self.parse_errors += other.parse_errors

"""What the sync engine may ask of a mailbox source, beyond the base verbs.

`MailboxSource` (connectors/base.py) is enough for a forward-only sync. A `SyncSource`
adds what a long-running sync needs: EXAMINE, UID listings with sizes (for bounded
batches, progress and newest-first backfill), fetching chosen UIDs, expunge detection and
server-side search. A `Pop3Source` is the POP3 shape: numbered messages with UIDLs
(RFC 1939 §7). The engine checks which one it holds with isinstance, so a capability is
an explicit precondition and a test source may implement only the base verbs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Protocol, runtime_checkable

from mailroom.connectors.base import Fetched, FolderStatus, MailboxSource


@runtime_checkable
class SyncSource(MailboxSource, Protocol):
    """An IMAP-like source: folders, UIDs, UIDVALIDITY, optional QRESYNC."""

    def open_folder(self, folder: str) -> FolderStatus:
        """Open the folder read-only; its UIDVALIDITY, UIDNEXT, count, HIGHESTMODSEQ."""
        ...

    def list_uids(
        self, folder: str, *, low: int = 1, high: int | None = None, since: date | None = None
    ) -> list[tuple[int, int]]:
        """(UID, size) of the messages with low <= UID <= high (and date >= since)."""
        ...

    def fetch_uids(self, folder: str, uids: Sequence[int]) -> Fetched:
        """These messages, in the order asked; expunged ones are left out, and listed
        ones the server did not send readably are `Fetched.unreadable`."""
        ...

    def expunged(self, folder: str, *, known: set[int], modseq: int | None) -> set[int]:
        """Which of the known UIDs are no longer in the folder."""
        ...

    def search_addresses(self, folder: str, addresses: Sequence[str]) -> list[int]:
        """UIDs of messages from, to or cc any of the addresses."""
        ...

    def abort(self) -> None:
        """Cut the connection from another thread (stage timeout)."""
        ...


@runtime_checkable
class Pop3Source(Protocol):
    """A POP3 maildrop: one folder, messages numbered per session, stable UIDLs."""

    def listing(self) -> list[tuple[int, str, int]]:
        """(message number, UIDL, size) of every message (UIDL + LIST)."""
        ...

    def retrieve(self, number: int) -> bytes:
        """The whole message (RETR); never marks anything."""
        ...

    def delete(self, number: int) -> None:
        """Mark for deletion (DELE); takes effect only at `close` (QUIT, RFC 1939 §6)."""
        ...

    def close(self) -> None:
        """QUIT (applying deletions) and drop the connection; safe to call twice."""
        ...

    def abort(self) -> None:
        """Cut the connection without QUIT: nothing marked is deleted."""
        ...

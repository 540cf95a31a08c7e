"""An in-memory mailbox source for engine tests (the tier between unit and real-server tests).

It implements the same `MailboxSource` verbs as the IMAP connector over dicts of bytes,
so the engine's logic (cursors, skipping, batching, dedup) is tested quickly here, and
against the real Dovecot in the integration tests.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from mailroom.connectors.base import FolderInfo, FolderRole, FolderStatus, RawMessage


@dataclass
class MemoryFolder:
    """One folder: its role, UIDVALIDITY and messages by UID."""

    role: FolderRole
    uidvalidity: int = 1
    messages: dict[int, bytes] = field(default_factory=dict)
    uidnext: int = 1

    def append(self, data: bytes) -> int:
        """Add a message with the next UID; return that UID."""
        uid = self.uidnext
        self.messages[uid] = data
        self.uidnext += 1
        return uid


class MemorySource:
    """A mailbox held in memory; counts fetches so tests can see what a sync cost."""

    def __init__(self) -> None:
        self.folders: dict[str, MemoryFolder] = {
            "INBOX": MemoryFolder(FolderRole.INBOX),
            "Sent": MemoryFolder(FolderRole.SENT),
            "Archive": MemoryFolder(FolderRole.ARCHIVE),
        }
        self.fetched = 0
        self.closed = False

    def list_folders(self) -> Sequence[FolderInfo]:
        """Every folder with its role, as the IMAP connector lists them."""
        return [FolderInfo(name=n, role=f.role) for n, f in self.folders.items()]

    def folder_status(self, folder: str) -> FolderStatus:
        """UIDVALIDITY, UIDNEXT and the message count of `folder`."""
        f = self.folders[folder]
        return FolderStatus(
            name=folder, uidvalidity=f.uidvalidity, uidnext=f.uidnext, messages=len(f.messages)
        )

    def fetch_since(
        self, folder: str, *, after_uid: int, batch_size: int = 200
    ) -> Iterator[list[RawMessage]]:
        """Messages of `folder` with a UID above `after_uid`, in batches, oldest first."""
        f = self.folders[folder]
        uids = sorted(u for u in f.messages if u > after_uid)
        for start in range(0, len(uids), batch_size):
            batch = [
                RawMessage(folder=folder, uidvalidity=f.uidvalidity, uid=u, data=f.messages[u])
                for u in uids[start : start + batch_size]
            ]
            self.fetched += len(batch)
            yield batch

    def close(self) -> None:
        """Mark the source closed (tests check the engine closes it)."""
        self.closed = True

"""The narrow interface every mailbox source implements, and the frozen values it returns.

A source is to the sync engine what a Transport is to httpx: a few verbs, nothing else.
Bytes and protocol tuples stop here; past this module there are only `FolderInfo`,
`FolderStatus` and `RawMessage`. No connector ever touches the database.

Invariant "read-only mailbox" (docs/architecture.md): nothing a source does changes the
user's mailbox — bodies are fetched with BODY.PEEK (RFC 3501 §6.4.5), folders are opened
read-only (EXAMINE).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class Security(StrEnum):
    """How the connection to a mail server is protected."""

    SSL = "ssl"  # implicit TLS from the first byte (IMAPS 993, POP3S 995, SMTPS 465)
    STARTTLS = "starttls"  # plain connect, then STARTTLS before any credential is sent
    NONE = "none"  # plain text; only when the user asks for it


class FolderRole(StrEnum):
    """What a folder is for, from SPECIAL-USE (RFC 6154) or its name."""

    INBOX = "inbox"
    SENT = "sent"
    DRAFTS = "drafts"
    TRASH = "trash"
    JUNK = "junk"
    ARCHIVE = "archive"
    ALL = "all"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Where and how to reach a mailbox server. Secrets are only ever held in memory.

    With `access_token` set, the connectors log in with SASL XOAUTH2 or OAUTHBEARER
    (connectors/sasl.py) as `username` instead of sending `password`; `oauth_mechanism`
    forces one of the two (None: XOAUTH2 when offered, else OAUTHBEARER). A refused token
    raises errors.TokenRejected, so the caller can refresh it once and retry with
    `dataclasses.replace(settings, access_token=new)`.
    """

    host: str
    port: int
    username: str
    password: str = field(default="", repr=False)
    security: Security = Security.SSL
    allow_self_signed: bool = False
    timeout: float = 60.0
    access_token: str | None = field(default=None, repr=False)
    oauth_mechanism: str | None = None

    @property
    def uses_token(self) -> bool:
        """Whether the login is by bearer token rather than password."""
        return bool(self.access_token)


@dataclass(frozen=True, slots=True)
class FolderInfo:
    """A folder as LIST reported it."""

    name: str
    role: FolderRole
    delimiter: str | None = None
    selectable: bool = True


@dataclass(frozen=True, slots=True)
class FolderStatus:
    """A folder's state from STATUS/EXAMINE: enough to decide whether anything changed."""

    name: str
    uidvalidity: int
    uidnext: int
    messages: int
    highestmodseq: int | None = None


@dataclass(frozen=True, slots=True)
class StagedCopy:
    """A message's bytes left on disk by the fetch worker (sync/fetch_worker.py): `size`
    bytes at `offset` of the staged pack file `path` (mail.packs)."""

    path: str
    sha256: str
    size: int
    offset: int = 0


@dataclass(frozen=True, slots=True)
class RawMessage:
    """One message's bytes and exactly where they were found.

    The bytes are in `data`, or, for a message the fetch worker staged (`staged` set and
    `data` empty), in the staging file until its batch is stored: read them with `load`.
    A Gmail copy (sync/gmail.py) also carries its labels (X-GM-LABELS) and its X-GM-MSGID
    as `server_id`."""

    folder: str
    uidvalidity: int
    uid: int
    data: bytes = field(repr=False)
    flags: tuple[str, ...] = ()
    internaldate: str | None = None
    staged: StagedCopy | None = None
    labels: tuple[str, ...] = ()
    server_id: str | None = None

    @property
    def size(self) -> int:
        """The message's size in bytes, staged or in memory."""
        return self.staged.size if self.staged is not None else len(self.data)

    def load(self) -> bytes:
        """The message's bytes, wherever they are."""
        if self.staged is not None:
            with open(self.staged.path, "rb") as fh:
                fh.seek(self.staged.offset)
                return fh.read(self.staged.size)
        return self.data


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A message the server lists whose FETCH (POP3: RETR) answer could not be read.

    Not an expunge: the server still has it. The sync retries it and then quarantines it
    (sync/quarantine.py); it is never skipped in silence."""

    uid: int
    reason: str


@dataclass(slots=True)
class Fetched:
    """What one fetch of chosen UIDs brought: the messages read, in the order asked, and
    the ones the server still lists but answered without a readable message. A UID in
    neither was expunged meanwhile."""

    messages: list[RawMessage] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)


class MailboxSource(Protocol):
    """A mailbox that can be read: the only verbs the sync engine uses."""

    def list_folders(self) -> Sequence[FolderInfo]:
        """All selectable folders, each with its role."""
        ...

    def folder_status(self, folder: str) -> FolderStatus:
        """UIDVALIDITY, UIDNEXT, message count (and HIGHESTMODSEQ when offered)."""
        ...

    def fetch_since(
        self, folder: str, *, after_uid: int, batch_size: int = 200
    ) -> Iterator[list[RawMessage]]:
        """Every message with UID > after_uid, oldest first, in batches; never sets a flag."""
        ...

    def close(self) -> None:
        """Log out and drop the connection; safe to call twice."""
        ...


def size_batches(
    sizes: Sequence[tuple[int, int]], *, max_count: int, max_bytes: int = 32 << 20
) -> list[list[int]]:
    """UIDs cut into batches of at most `max_count` messages and about `max_bytes` bytes.

    This bounds memory: imaplib holds one FETCH answer at a time, so a batch's bytes are
    what a sync holds. A message larger than `max_bytes` makes a batch of its own.
    """
    if max_count < 1:
        raise ValueError("max_count must be >= 1")
    batches: list[list[int]] = []
    current: list[int] = []
    total = 0
    for uid, size in sizes:
        if current and (len(current) >= max_count or total + size > max_bytes):
            batches.append(current)
            current, total = [], 0
        current.append(uid)
        total += size
    if current:
        batches.append(current)
    return batches

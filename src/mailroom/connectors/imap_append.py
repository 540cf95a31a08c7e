"""The Sent folder, as the outbox needs it: find a message by Message-ID, append a copy.

These are the only IMAP writes Mailroom makes, and both are deliberate user actions
(invariant "read-only mailbox", docs/architecture.md): a message the user sent from the
CRM is appended to their Sent folder with \\Seen, as their own mail client would (RFC 3501
§6.3.11 APPEND); nothing else is changed.

- `find` answers "did this message already go out?" before the outbox retries a send whose
  outcome is unknown: EXAMINE the Sent folder (read-only, §6.3.2), `UID SEARCH HEADER
  Message-ID <id>` (§6.4.4; HEADER matches a substring, so each hit's Message-ID is then
  compared exactly) and fetch the copy with BODY.PEEK[] (no \\Seen set by reading).
- `append` returns where the copy landed — from the APPENDUID response code of UIDPLUS
  (RFC 4315 §3) or, on a server without it, by finding the copy again — so the message can
  be stored at once with that very (folder, UIDVALIDITY, UID), and the next sync, which
  fetches the same UID, finds the copy already known: one message row, no duplicate.

The connection, login, TLS and folder discovery (SPECIAL-USE, RFC 6154) are
`ImapSource.connect` and `ImapSource.list_folders` from connectors/imap.py; the error
translation is its `_call`, so failures become the same MailServerError tree. Reading a
Message-ID (RFC 5322 §3.6.4: comments, quoting, bare ids) is message parsing, not IMAP: the
caller passes it in as `message_id_of` (the outbox passes mail.threads'), so connectors
import nothing of Mailroom's but its errors.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol, cast

from mailroom.connectors.base import FolderRole, RawMessage, ServerSettings
from mailroom.connectors.imap import ImapSource
from mailroom.connectors.limits import nz_number
from mailroom.errors import ProtocolError

_APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]", re.IGNORECASE)
_SAFE_ID = re.compile(r"[!-~]+")  # printable ASCII, no space: safe inside a quoted string


class _WriteClient(Protocol):
    """The IMAPClient methods used here (the package ships no type hints)."""

    def append(
        self, folder: str, msg: bytes, flags: tuple[bytes, ...] = (), msg_time: Any = None
    ) -> bytes: ...
    def select_folder(self, folder: str, readonly: bool = False) -> dict[bytes, Any]: ...
    def search(self, criteria: list[str]) -> list[int]: ...
    def fetch(self, messages: list[int], data: list[bytes]) -> dict[int, dict[bytes, Any]]: ...


MessageIdOf = Callable[[str | None], str | None]
"""A Message-ID header value → the id without angle brackets, or None if it has none."""


class SentFolder:
    """A logged-in IMAP connection to one mailbox, for its Sent folder.

    `message_id_of` reads a Message-ID value (the caller's parser; see the module doc)."""

    def __init__(self, source: ImapSource, *, message_id_of: MessageIdOf) -> None:
        self._source = source
        self.host = source.host
        self._message_id_of = message_id_of

    @classmethod
    def connect(
        cls,
        settings: ServerSettings,
        *,
        message_id_of: MessageIdOf,
        ssl_context: ssl.SSLContext | None = None,
    ) -> SentFolder:
        """Log in to the mailbox (ImapSource.connect) for its Sent folder."""
        return cls(
            ImapSource.connect(settings, ssl_context=ssl_context), message_id_of=message_id_of
        )

    def close(self) -> None:
        """LOGOUT and drop the connection."""
        self._source.close()

    def __enter__(self) -> SentFolder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _client(self) -> _WriteClient:
        return cast(_WriteClient, self._source._require())

    def folder(self) -> str | None:
        """The Sent folder's name (SPECIAL-USE \\Sent or a well-known name), or None."""
        for info in self._source.list_folders():
            if info.role is FolderRole.SENT:
                return info.name
        return None

    def find(self, folder: str, message_id: str) -> RawMessage | None:
        """The copy in `folder` whose Message-ID is exactly `message_id`, or None."""
        wanted = self._message_id_of(message_id)
        if wanted is None or not _SAFE_ID.fullmatch(wanted) or '"' in wanted or "\\" in wanted:
            return None
        client = self._client()
        call = self._source._call
        selected = call("EXAMINE", client.select_folder, folder, readonly=True)
        uidvalidity = _uidvalidity(selected, self.host, folder)
        uids = call("UID SEARCH", client.search, ["HEADER", "Message-ID", f"<{wanted}>"])
        server = f"The IMAP server {self.host}"
        for uid in sorted(nz_number(u, "a UID in a SEARCH answer", server=server) for u in uids):
            items = call("UID FETCH", client.fetch, [uid], [b"BODY.PEEK[]", b"FLAGS"])
            item = items.get(uid) or {}
            data = item.get(b"BODY[]")
            if not isinstance(data, bytes):
                continue
            header_end = data.find(b"\r\n\r\n")
            head = data[: header_end if header_end >= 0 else len(data)]
            if self._header_message_id(head) == wanted:
                flags = tuple(
                    f.decode() if isinstance(f, bytes) else str(f) for f in item.get(b"FLAGS", ())
                )
                return RawMessage(
                    folder=folder,
                    uidvalidity=uidvalidity,
                    uid=uid,
                    data=data,
                    flags=tuple(f for f in flags if f != "\\Recent"),
                )
        return None

    def append(
        self, folder: str, data: bytes, *, message_id: str, when: datetime | None = None
    ) -> RawMessage:
        """APPEND `data` to `folder` with \\Seen; where the copy landed, as a RawMessage."""
        client = self._client()
        answer = self._source._call("APPEND", client.append, folder, data, (b"\\Seen",), when)
        match = _APPENDUID.search(answer if isinstance(answer, bytes) else str(answer).encode())
        if match:
            server = f"The IMAP server {self.host}"
            return RawMessage(
                folder=folder,
                uidvalidity=nz_number(match.group(1), "an APPENDUID UIDVALIDITY", server=server),
                uid=nz_number(match.group(2), "an APPENDUID UID", server=server),
                data=data,
                flags=("\\Seen",),
            )
        found = self.find(folder, message_id)  # a server without UIDPLUS
        if found is None:
            raise ProtocolError(
                f"The IMAP server {self.host} accepted the Sent copy but it cannot be found "
                f"in {folder}"
            )
        return found

    def _header_message_id(self, head: bytes) -> str | None:
        """The Message-ID of a raw header block (unfolded, first occurrence)."""
        text = head.decode("ascii", "replace")
        unfolded = re.sub(r"\r?\n[ \t]+", " ", text)
        for line in unfolded.splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip().lower() == "message-id":
                return self._message_id_of(value)
        return None


def _uidvalidity(selected: dict[bytes, Any], host: str, folder: str) -> int:
    server = f"The IMAP server {host}"
    if b"UIDVALIDITY" not in selected:
        raise ProtocolError(f"{server} sent no UIDVALIDITY for {folder}")
    return nz_number(selected[b"UIDVALIDITY"], f"UIDVALIDITY of {folder}", server=server)

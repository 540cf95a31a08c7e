"""IMAP mailbox source: read-only access to a mailbox over IMAP4rev1 (RFC 3501).

Why IMAPClient for the session: it handles the connection, STARTTLS, LOGIN (its logger
redacts the password), LIST with modified UTF-7 names (§5.1.3), STATUS, EXAMINE and IDLE,
parsing the answers into typed values; `_Client` is the typed face of the few methods we
call. The hot path (UID lists, bodies, QRESYNC) runs on the imaplib object underneath, in
imap_fetch.py, because IMAPClient's FETCH parser costs three times the fetch itself.

Why EXAMINE + BODY.PEEK: a sync must never change the mailbox it reads (invariant
"read-only mailbox", docs/architecture.md).
EXAMINE opens a folder read-only (RFC 3501 §6.3.2): the server may not change flags,
expunge or clear \\Recent for it. BODY.PEEK[] (§6.4.5) fetches the message without the
implicit \\Seen that BODY[] sets. Either one alone would do; both guard against a server
that gets the other wrong. No STORE, EXPUNGE, COPY or MOVE is ever sent.

Incremental fetch: UIDs are strictly ascending within one UIDVALIDITY (§2.3.1.1), so
"everything after the last UID we stored" is `UID FETCH n+1:* (RFC822.SIZE)`, filtered
(a range `n:*` always includes the highest UID, §6.4.8). Every RawMessage carries the
UIDVALIDITY the folder had when it was fetched: if it changes the folder is new.
Flag changes and expunges: `changes` asks CHANGEDSINCE and VANISHED (CONDSTORE/QRESYNC,
RFC 7162, ENABLEd right after LOGIN) when offered, else diffs. Roles: imap_roles.py.

Errors: every failure becomes one of mailroom.errors' MailServerError subclasses. Messages
are built from the host, the user name and the server's answer, and any text that might
contain the password is scrubbed: the password appears in no message and no log line.
"""

from __future__ import annotations

import contextlib
import functools
import imaplib
import logging
import socket
import ssl
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from typing import Any, ParamSpec, Protocol, TypeVar

from mailroom.connectors import imap_fetch, sasl
from mailroom.connectors.base import (
    Fetched,
    FolderInfo,
    FolderStatus,
    RawMessage,
    Security,
    ServerSettings,
    size_batches,
)
from mailroom.connectors.imap_bounded import BoundedIMAPClient
from mailroom.connectors.imap_errors import translate_error
from mailroom.connectors.imap_roles import assign_roles, default_sync_folders
from mailroom.connectors.limits import AnswerTooLarge, modseq, number, nz_number
from mailroom.connectors.transport import Connection, tls_context_for
from mailroom.errors import MailServerError, ProtocolError, TLSError

__all__ = ["ImapSource", "assign_roles", "connect", "default_sync_folders"]

log = logging.getLogger(__name__)
_CHANGES = (b"EXISTS", b"EXPUNGE", b"FETCH", b"VANISHED", b"RECENT")
P = ParamSpec("P")
R = TypeVar("R")


class _Client(Protocol):
    """The IMAPClient methods this module uses, with the types they return."""

    normalise_times: bool

    def capabilities(self) -> tuple[bytes, ...]: ...
    def starttls(self, ssl_context: ssl.SSLContext | None = None) -> bytes: ...
    def login(self, username: str, password: str) -> bytes: ...
    def sasl_login(self, mech_name: str, mech_callable: Callable[[bytes], bytes]) -> bytes: ...
    def logout(self) -> bytes: ...
    def shutdown(self) -> None: ...
    def list_folders(self) -> list[tuple[tuple[bytes, ...], bytes | None, str | bytes]]: ...
    def folder_status(self, folder: str, what: Sequence[bytes]) -> dict[bytes, int]: ...
    def select_folder(self, folder: str, readonly: bool = False) -> dict[bytes, Any]: ...
    def enable(self, *capabilities: str) -> list[bytes]: ...
    def idle(self) -> bytes: ...
    def idle_check(self, timeout: float | None = None) -> list[tuple[Any, ...]]: ...
    def idle_done(self) -> tuple[bytes, list[Any]]: ...


class ImapSource(Connection):
    """A logged-in, read-only IMAP connection implementing `MailboxSource`."""

    protocol = "IMAP"
    failures = (imaplib.IMAP4.error, OSError, EOFError, AnswerTooLarge)

    def __init__(self, client: _Client | None, *, host: str, port: int, username: str) -> None:
        super().__init__(host=host, port=port)
        self._client = client
        self.username = username
        self._selected: FolderStatus | None = None
        self._qresync_on = False
        # How to open the same connection again in another process (sync/fetch_worker.py):
        # picklable, so set only when the settings alone describe it (no custom SSL context).
        self.reopen: Callable[[], ImapSource] | None = None
        self.aborted = False

    # -- connecting ------------------------------------------------------------------------

    @classmethod
    def connect(
        cls, settings: ServerSettings, *, ssl_context: ssl.SSLContext | None = None
    ) -> ImapSource:
        """Connect, secure the connection as `settings.security` says, and log in.

        `ssl_context` replaces the context built from the settings (tests pass one that
        trusts their own CA). STARTTLS is required when asked for: a server that does not
        offer it is an error, never a reason to go on in plain text.
        """
        host, port = settings.host, settings.port
        ctx = tls_context_for(settings, ssl_context)
        source = cls(None, host=host, port=port, username=settings.username)
        source.bearer = settings.uses_token
        with source._logging_in(*sasl.login_secrets(settings), on_failure=source.close):
            client: _Client = source._call(
                "connect",
                BoundedIMAPClient,
                host,
                port=port,
                ssl=settings.security is Security.SSL,
                ssl_context=ctx,
                timeout=settings.timeout,
            )
            source._client = client
            # IMAPClient sets imaplib's debug level to 5 to route imaplib's trace to a
            # logger: imaplib then formats repr() of every response, literals included
            # (the whole FETCH batch, megabytes, at the end of each command), whether or
            # not anything logs it. That was most of a fetch's CPU; and the trace would
            # hold the LOGIN line. Off.
            getattr(client, "_imap").debug = 0  # noqa: B009
            if settings.security is Security.STARTTLS:
                if b"STARTTLS" not in source._call("CAPABILITY", client.capabilities):
                    raise TLSError(
                        f"The IMAP server {host}:{port} does not offer STARTTLS; "
                        "refusing to send the password in plain text",
                        hint="Use implicit TLS (security ssl, usually port 993) instead.",
                    )
                source._call("STARTTLS", client.starttls, ctx)
            if b"LOGINDISABLED" in source._call("CAPABILITY", client.capabilities):
                raise TLSError(
                    f"The IMAP server {host} refuses a password over an unencrypted connection",
                    hint="Use security ssl or starttls.",
                )
            source._log_in(client, settings)
            client.normalise_times = False  # keep INTERNALDATE's own time zone
            if b"QRESYNC" in source._call("CAPABILITY", client.capabilities):
                source._call("ENABLE", client.enable, "QRESYNC")  # RFC 7162 §3.2.3
                source._qresync_on = True
        log.info("IMAP %s:%s: logged in as %s (%s)", host, port, source.username, settings.security)
        if ssl_context is None:
            source.reopen = functools.partial(cls.connect, settings)
        return source

    def _log_in(self, client: _Client, settings: ServerSettings) -> None:
        """LOGIN with the password, or AUTHENTICATE XOAUTH2/OAUTHBEARER with the token."""
        if settings.access_token is None:
            self._call("LOGIN", client.login, settings.username, settings.password)
            return
        caps = self._call("CAPABILITY", client.capabilities)
        offered = [c.decode()[5:] for c in caps if c.upper().startswith(b"AUTH=")]
        mechanism = sasl.choose_mechanism(offered, settings.oauth_mechanism)
        exchange = sasl.BearerExchange(mechanism, settings.username, settings.access_token)
        self._call(f"AUTHENTICATE {mechanism}", client.sasl_login, mechanism, exchange)

    # -- MailboxSource ---------------------------------------------------------------------

    def list_folders(self) -> list[FolderInfo]:
        """All selectable folders (LIST "" "*"), each with its role."""
        client = self._require()
        listed: list[tuple[str, str | None, set[str]]] = []
        for flags, delimiter, name in self._call("LIST", client.list_folders):
            attrs = {_text(f).lower() for f in flags}
            if "\\noselect" in attrs or "\\nonexistent" in attrs:
                continue
            listed.append((_text(name), _text(delimiter) if delimiter else None, attrs))
        roles = assign_roles(listed)
        return [
            FolderInfo(name=name, role=role, delimiter=delim)
            for (name, delim, _), role in zip(listed, roles, strict=True)
        ]

    def folder_status(self, folder: str) -> FolderStatus:
        """STATUS (MESSAGES UIDNEXT UIDVALIDITY [HIGHESTMODSEQ]) without selecting."""
        client = self._require()
        what = [b"MESSAGES", b"UIDNEXT", b"UIDVALIDITY"]
        if b"CONDSTORE" in self._call("CAPABILITY", client.capabilities):
            what.append(b"HIGHESTMODSEQ")  # RFC 7162 §3.1.6
        status = self._call("STATUS", client.folder_status, folder, what)
        missing = [key.decode() for key in what if key not in status]
        if missing:
            raise ProtocolError(
                f"The IMAP server {self.host} sent a STATUS for {folder} without "
                f"{', '.join(missing)}"
            )
        return _folder_status(
            f"The IMAP server {self.host}",
            folder,
            uidvalidity=status[b"UIDVALIDITY"],
            uidnext=status[b"UIDNEXT"],
            messages=status[b"MESSAGES"],
            highestmodseq=status.get(b"HIGHESTMODSEQ"),
        )

    def fetch_since(
        self, folder: str, *, after_uid: int, batch_size: int = 200
    ) -> Iterator[list[RawMessage]]:
        """Every message with UID > after_uid, ascending, in batches; read-only throughout."""
        if after_uid < 0 or batch_size < 1:
            raise ValueError("after_uid must be >= 0 and batch_size >= 1")
        opened = self.open_folder(folder)
        if opened.messages == 0:
            return
        sizes = self.list_uids(folder, low=after_uid + 1)
        log.debug("IMAP %s %s: %d messages after UID %d", self.host, folder, len(sizes), after_uid)
        for batch in size_batches(sizes, max_count=batch_size):
            fetched = self.fetch_uids(folder, batch)
            if fetched.unreadable:  # a forward-only caller has no quarantine: never skip
                first = fetched.unreadable[0]
                raise ProtocolError(
                    f"The IMAP server {self.host} did not send UID {first.uid} of {folder}: "
                    f"{first.reason}"
                )
            if fetched.messages:
                yield fetched.messages

    # -- the sync engine's further verbs (sync/source.py, SyncSource) ----------------------

    def supports(self, capability: str) -> bool:
        """Whether the server announced `capability` (e.g. "QRESYNC", "IDLE")."""
        caps = self._call("CAPABILITY", self._require().capabilities)
        return capability.upper().encode() in caps

    def open_folder(self, folder: str) -> FolderStatus:
        """EXAMINE the folder (read-only, RFC 3501 §6.3.2); its state as EXAMINE reported."""
        selected = self._call("EXAMINE", self._require().select_folder, folder, readonly=True)
        if b"UIDVALIDITY" not in selected:
            raise ProtocolError(f"The IMAP server {self.host} sent no UIDVALIDITY for {folder}")
        status = _folder_status(
            f"The IMAP server {self.host}",
            folder,
            uidvalidity=selected[b"UIDVALIDITY"],
            uidnext=selected.get(b"UIDNEXT"),
            messages=selected.get(b"EXISTS", 0),
            highestmodseq=selected.get(b"HIGHESTMODSEQ"),
        )
        self._selected = status
        return status

    def list_uids(
        self, folder: str, *, low: int = 1, high: int | None = None, since: date | None = None
    ) -> list[tuple[int, int]]:
        """(UID, size) of the messages with low <= UID <= high (and date >= since)."""
        selected = self._selected_status(folder)
        if selected.messages == 0:
            return []
        return self._call(
            "UID FETCH RFC822.SIZE",
            imap_fetch.uid_sizes,
            self._raw(),
            low=low,
            high=high,
            since=since,
        )

    def fetch_uids(self, folder: str, uids: Sequence[int]) -> Fetched:
        """These messages (BODY.PEEK[]), in the order asked; expunged ones are left out,
        listed ones the server did not send readably are `Fetched.unreadable`."""
        selected = self._selected_status(folder)
        return self._call(
            "UID FETCH",
            imap_fetch.fetch_raw,
            self._raw(),
            folder=folder,
            uidvalidity=selected.uidvalidity,
            uids=uids,
        )

    def expunged(self, folder: str, *, known: set[int], modseq: int | None) -> set[int]:
        """Which of the `known` UIDs are gone from the folder (see `changes`)."""
        return self.changes(folder, known=known, modseq=modseq)[0]

    def changes(
        self, folder: str, *, known: set[int], modseq: int | None
    ) -> tuple[set[int], imap_fetch.Flags]:
        """Which `known` UIDs are gone, and UID → flags of those whose flags changed.

        With CONDSTORE and a stored HIGHESTMODSEQ: `UID FETCH … (UID FLAGS) (CHANGEDSINCE
        m [VANISHED])` (RFC 7162 §3.1.4, §3.2.6), whose cost grows with the change; without
        QRESYNC the expunges come from a UID SEARCH diff (RFC 3501 §6.4.4). Otherwise the
        FLAGS of every message, and what is missing is gone: cost grows with the folder.
        """
        if not known:
            return set(), {}
        high = max(known)
        if modseq is not None and (found := self.changes_since(folder, modseq=modseq, high=high)):
            gone, flags = found
            return gone & known, flags
        self._selected_status(folder)
        raw = self._raw()
        if modseq is not None and self.supports("CONDSTORE"):
            since = functools.partial(imap_fetch.changed_since, raw, vanished=False)
            _, flags = self._call("UID FETCH CHANGEDSINCE", since, modseq=modseq, high=high)
            present = self._call("UID SEARCH", imap_fetch.search, raw, f"UID 1:{high}")
            return known - set(present), flags
        flags = self._call("UID FETCH FLAGS", imap_fetch.all_flags, raw, high=high)
        return known - set(flags), flags

    def changes_since(
        self, folder: str, *, modseq: int, high: int
    ) -> tuple[set[int], imap_fetch.Flags] | None:
        """With QRESYNC: the UIDs <= `high` expunged since `modseq` (VANISHED), and UID →
        flags of those whose flags changed, in one `UID FETCH 1:high (UID FLAGS)
        (CHANGEDSINCE m VANISHED)` (RFC 7162 §3.2.6) that needs no list of the UIDs the
        caller holds: the cost grows with the change, not the folder. None without QRESYNC
        (then `changes` diffs against the known UIDs). A UID in the answer may be one the
        caller never stored."""
        if not self._qresync_on or not self.supports("CONDSTORE"):
            return None
        self._selected_status(folder)
        since = functools.partial(imap_fetch.changed_since, self._raw(), vanished=True)
        gone, flags = self._call("UID FETCH CHANGEDSINCE", since, modseq=modseq, high=high)
        return gone or set(), flags

    def run_raw(
        self, folder: str, action: str, fn: Callable[..., R], /, *args: object, **kwargs: object
    ) -> R:
        """`fn(imaplib connection, *args, **kwargs)` with `folder` selected, its failures
        turned into mailroom errors: how imap_gmail.py's Gmail verbs run (sync/gmail.py)."""
        self._selected_status(folder)
        return self._call(action, fn, self._raw(), *args, **kwargs)

    def search_addresses(self, folder: str, addresses: Sequence[str]) -> list[int]:
        """UIDs of the messages FROM, TO or CC any of `addresses` (RFC 3501 §6.4.4)."""
        self._selected_status(folder)
        found: set[int] = set()
        for address in addresses:
            for key in ("FROM", "TO", "CC"):
                found.update(
                    self._call("UID SEARCH", imap_fetch.search_text, self._raw(), key, address)
                )
        return sorted(found)

    def idle_start(self, folder: str) -> FolderStatus:
        """EXAMINE the folder and enter IDLE (RFC 2177 §3); the server then pushes changes.
        Returns the folder's state as EXAMINE reported it (a change between two IDLEs
        shows there, not as a push)."""
        status = self.open_folder(folder)
        self._call("IDLE", self._require().idle)
        return status

    def idle_pushes(self) -> bool | None:
        """What the server pushed and is waiting on the socket, without blocking: True
        when the folder changed (EXISTS, EXPUNGE, FETCH…), False for other responses
        ("* OK Still here"), None when nothing could be read (the peer closed, or only a
        TLS record arrived): then `idle_done` tells which."""
        pushed = self._call("IDLE", self._require().idle_check, 0)
        if not pushed:
            return None
        return _changed(pushed)

    def idle_done(self) -> bool:
        """Leave IDLE (DONE; servers drop an IDLE after 30 minutes, RFC 2177 §3); True
        when a change was pushed meanwhile."""
        _, pushed = self._call("DONE", self._require().idle_done)
        return _changed(pushed)

    def wire(self) -> socket.socket | None:
        """The connection's socket (to wait for pushes in a selector), None once closed."""
        client = self._client
        sock = getattr(getattr(client, "_imap", None), "sock", None)
        return sock if isinstance(sock, socket.socket) else None

    def abort(self) -> None:
        """Cut the connection from another thread: the blocked command fails at once."""
        self.aborted = True  # read by a fetch worker's wait (sync/fetch_worker.py)
        sock = self.wire()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """LOGOUT and drop the connection; safe to call twice."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.logout()
        except (imaplib.IMAP4.error, OSError, EOFError):  # already gone: drop the socket
            try:
                client.shutdown()
            except OSError:
                log.debug("IMAP %s: shutdown after a failed LOGOUT failed", self.host)

    # -- internals -------------------------------------------------------------------------

    def _require(self) -> _Client:
        if self._client is None:
            raise self._closed()
        return self._client

    def _raw(self) -> imaplib.IMAP4:
        """The imaplib connection under IMAPClient, for the hot path (imap_fetch.py)."""
        raw: imaplib.IMAP4 = getattr(self._require(), "_imap")  # noqa: B009
        return raw

    def _selected_status(self, folder: str) -> FolderStatus:
        if self._selected is None or self._selected.name != folder:
            return self.open_folder(folder)
        return self._selected

    def _translate(self, action: str, exc: BaseException) -> MailServerError:
        return translate_error(
            exc,
            action=action,
            host=self.host,
            port=self.port,
            username=self.username,
            scrub=self._scrub,
            bearer=self.bearer,
        )


def _changed(pushed: Sequence[object]) -> bool:
    """Whether IDLE pushes (parsed untagged responses) say the folder changed."""
    return any(isinstance(item, tuple) and len(item) > 1 and item[1] in _CHANGES for item in pushed)


def _folder_status(
    server: str,
    folder: str,
    *,
    uidvalidity: object,
    uidnext: object,
    messages: object,
    highestmodseq: object,
) -> FolderStatus:
    """A FolderStatus from a STATUS or EXAMINE answer, every number in its RFC range."""
    return FolderStatus(
        name=folder,
        uidvalidity=nz_number(uidvalidity, f"UIDVALIDITY of {folder}", server=server),
        # EXAMINE may omit UIDNEXT (RFC 3501 §6.3.1): 0, unknown
        uidnext=0 if uidnext is None else nz_number(uidnext, f"UIDNEXT of {folder}", server=server),
        messages=number(messages, f"a message count of {folder}", server=server),
        highestmodseq=None
        if highestmodseq is None
        else modseq(highestmodseq, f"HIGHESTMODSEQ of {folder}", server=server),
    )


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def connect(settings: ServerSettings, *, ssl_context: ssl.SSLContext | None = None) -> ImapSource:
    """Shorthand for `ImapSource.connect`."""
    return ImapSource.connect(settings, ssl_context=ssl_context)

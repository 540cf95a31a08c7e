"""IMAP mailbox source: read-only access to a mailbox over IMAP4rev1 (RFC 3501).

Why IMAPClient: imaplib speaks the wire protocol but leaves parsing to the caller (FETCH
responses arrive as nested byte fragments, folder names in modified UTF-7, RFC 3501
§5.1.3). IMAPClient parses responses into dicts keyed by UID, decodes folder names,
handles literals and `UID` commands, and its logger redacts LOGIN. We only keep control
of what goes on the wire and of the error mapping; `_Client` below is the typed face of
the few IMAPClient methods we call (the package ships no type hints).

Why EXAMINE + BODY.PEEK: a sync must never change the mailbox it reads (DESIGN.md #1).
EXAMINE opens a folder read-only (RFC 3501 §6.3.2): the server may not change flags,
expunge or clear \\Recent for it. BODY.PEEK[] (§6.4.5) fetches the message without the
implicit \\Seen that BODY[] sets. Either one alone would do; both guard against a server
that gets the other wrong. No STORE, EXPUNGE, COPY or MOVE is ever sent.

Incremental fetch: UIDs are strictly ascending within one UIDVALIDITY (§2.3.1.1), so
"everything after the last UID we stored" is `UID SEARCH UID n+1:*`. A range `n:*` always
includes the highest UID even when it is below n (§6.4.8, "*" is the largest number in
use), so the answer is filtered. Every RawMessage carries UIDVALIDITY: if it changes the
caller must treat the folder as new.

Folder roles come from SPECIAL-USE attributes (RFC 6154 §2), which Dovecot, Gmail,
Fastmail and Exchange put in plain LIST answers, and else from well-known names.

Errors: every failure becomes one of mailroom.errors' MailServerError subclasses. Messages
are built from the host, the user name and the server's answer, and any text that might
contain the password is scrubbed: the password appears in no message and no log line.
"""

from __future__ import annotations

import imaplib
import logging
import re
import socket
import ssl
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, ParamSpec, Protocol, TypeVar

from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from mailroom.connectors.base import (
    FolderInfo,
    FolderRole,
    FolderStatus,
    RawMessage,
    Security,
    ServerSettings,
)
from mailroom.errors import (
    AuthenticationError,
    MailroomError,
    MailServerError,
    NetworkError,
    ProtocolError,
    TLSError,
)

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")

AUTH_HINT = "Check the password; with two-factor sign-in, use an app password."
TLS_HINT = (
    "Check the host name and the security setting (implicit TLS is usually port 993, "
    "STARTTLS port 143). For a server with a self-signed certificate, use "
    "--allow-self-signed."
)
NETWORK_HINT = "Check the host name, the port and the network; the server may be down."

# RFC 6154 §2 attributes, lower-cased: "\\sent" -> SENT, ...
SPECIAL_USE_ROLES = {
    "\\" + role.value: role
    for role in FolderRole
    if role not in (FolderRole.INBOX, FolderRole.OTHER)
}

# Well-known names, best first, for servers without SPECIAL-USE (compared case-insensitively,
# also after stripping an "INBOX." or "INBOX/" prefix).
NAME_ROLES: dict[FolderRole, tuple[str, ...]] = {
    role: tuple(names.split("|"))
    for role, names in {
        FolderRole.SENT: "sent|sent items|sent messages|sent mail|[gmail]/sent mail"
        "|[google mail]/sent mail",
        FolderRole.DRAFTS: "drafts|draft|[gmail]/drafts|[google mail]/drafts",
        FolderRole.TRASH: "trash|deleted items|deleted messages|[gmail]/trash|[gmail]/bin",
        FolderRole.JUNK: "junk|spam|junk e-mail|junk email|[gmail]/spam",
        FolderRole.ARCHIVE: "archive|archives",
        FolderRole.ALL: "[gmail]/all mail|[google mail]/all mail|all mail",
    }.items()
}

_BYTES_REPR = re.compile(r"""^b(['"])(.*)\1$""", re.DOTALL)
_RESP_CODE = re.compile(r"^\[([A-Z-]+)")


class _Client(Protocol):
    """The IMAPClient methods this module uses, with the types they return."""

    normalise_times: bool

    def capabilities(self) -> tuple[bytes, ...]: ...
    def starttls(self, ssl_context: ssl.SSLContext | None = None) -> bytes: ...
    def login(self, username: str, password: str) -> bytes: ...
    def logout(self) -> bytes: ...
    def shutdown(self) -> None: ...
    def list_folders(self) -> list[tuple[tuple[bytes, ...], bytes | None, str | bytes]]: ...
    def folder_status(self, folder: str, what: Sequence[bytes]) -> dict[bytes, int]: ...
    def select_folder(self, folder: str, readonly: bool = False) -> dict[bytes, Any]: ...
    def search(self, criteria: list[str]) -> list[int]: ...
    def fetch(self, messages: list[int], data: list[bytes]) -> dict[int, dict[bytes, Any]]: ...


def _server_text(exc: BaseException) -> str:
    """The server's words from an imaplib/IMAPClient error, without the b'...' wrapper."""
    arg = exc.args[0] if exc.args else ""
    text = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
    match = _BYTES_REPR.match(text)
    return match.group(2) if match else text


def make_ssl_context(settings: ServerSettings) -> ssl.SSLContext:
    """The system trust store; no verification at all when allow_self_signed is set."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if settings.allow_self_signed:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class ImapSource:
    """A logged-in, read-only IMAP connection implementing `MailboxSource`."""

    def __init__(self, client: _Client | None, *, host: str, port: int, username: str) -> None:
        self._client = client
        self.host = host
        self.port = port
        self.username = username
        self._secret: str | None = None  # only while logging in, to scrub messages

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
        tls = settings.security is not Security.NONE
        ctx = (ssl_context or make_ssl_context(settings)) if tls else None
        source = cls(None, host=host, port=port, username=settings.username)
        source._secret = settings.password
        try:
            client: _Client = source._call(
                "connect",
                IMAPClient,
                host,
                port=port,
                ssl=settings.security is Security.SSL,
                ssl_context=ctx,
                timeout=settings.timeout,
            )
            source._client = client
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
            source._call("LOGIN", client.login, settings.username, settings.password)
            client.normalise_times = False  # keep INTERNALDATE's own time zone
        except BaseException:
            source.close()
            raise
        finally:
            source._secret = None
        log.info("IMAP %s:%s: logged in as %s (%s)", host, port, source.username, settings.security)
        return source

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
        try:
            modseq = status.get(b"HIGHESTMODSEQ")
            return FolderStatus(
                name=folder,
                uidvalidity=int(status[b"UIDVALIDITY"]),
                uidnext=int(status[b"UIDNEXT"]),
                messages=int(status[b"MESSAGES"]),
                highestmodseq=int(modseq) if modseq is not None else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(
                f"The IMAP server {self.host} sent an incomplete STATUS for {folder}: {status!r}"
            ) from exc

    def fetch_since(
        self, folder: str, *, after_uid: int, batch_size: int = 200
    ) -> Iterator[list[RawMessage]]:
        """Every message with UID > after_uid, ascending, in batches; read-only throughout."""
        if after_uid < 0 or batch_size < 1:
            raise ValueError("after_uid must be >= 0 and batch_size >= 1")
        client = self._require()
        selected = self._call("EXAMINE", client.select_folder, folder, readonly=True)
        try:
            uidvalidity = int(selected[b"UIDVALIDITY"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(
                f"The IMAP server {self.host} sent no UIDVALIDITY for {folder}"
            ) from exc
        if int(selected.get(b"EXISTS", 1)) == 0:
            return
        found = self._call("UID SEARCH", client.search, ["UID", f"{after_uid + 1}:*"])
        uids = sorted({int(uid) for uid in found if int(uid) > after_uid})
        log.debug("IMAP %s %s: %d messages after UID %d", self.host, folder, len(uids), after_uid)
        for start in range(0, len(uids), batch_size):
            batch = uids[start : start + batch_size]
            items = self._call(
                "UID FETCH", client.fetch, batch, [b"BODY.PEEK[]", b"FLAGS", b"INTERNALDATE"]
            )
            messages = [
                msg
                for uid in batch
                if (msg := self._message(folder, uidvalidity, uid, items.get(uid))) is not None
            ]
            if messages:
                yield messages

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

    def __enter__(self) -> ImapSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------

    def _message(
        self, folder: str, uidvalidity: int, uid: int, item: dict[bytes, Any] | None
    ) -> RawMessage | None:
        if item is None or b"BODY[]" not in item:
            log.debug("IMAP %s %s: UID %d vanished before FETCH", self.host, folder, uid)
            return None  # expunged by someone else between SEARCH and FETCH
        body = item[b"BODY[]"]
        if not isinstance(body, bytes):
            raise ProtocolError(
                f"The IMAP server {self.host} sent no body for UID {uid} in {folder}"
            )
        when = item.get(b"INTERNALDATE")
        return RawMessage(
            folder=folder,
            uidvalidity=uidvalidity,
            uid=uid,
            data=body,
            # \Recent belongs to a session, not the message (RFC 3501 §2.3.2; gone in 9051)
            flags=tuple(f for f in map(_text, item.get(b"FLAGS", ())) if f != "\\Recent"),
            internaldate=when.isoformat() if isinstance(when, datetime) else None,
        )

    def _require(self) -> _Client:
        if self._client is None:
            raise NetworkError(f"The connection to the IMAP server {self.host} is closed")
        return self._client

    def _call(self, action: str, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run one IMAP step, turning whatever it raises into a MailServerError."""
        try:
            return fn(*args, **kwargs)
        except MailroomError:
            raise
        except (imaplib.IMAP4.error, OSError, EOFError) as exc:
            error = self._translate(action, exc)
            log.warning("IMAP %s:%s %s failed: %s", self.host, self.port, action, error)
            raise error from exc

    def _scrub(self, text: str) -> str:
        if self._secret:
            text = text.replace(self._secret, "********")
        return text

    def _translate(self, action: str, exc: BaseException) -> MailServerError:
        where = f"{self.host}:{self.port}"
        server = f"The IMAP server {where}"
        if isinstance(exc, LoginError):
            said = self._scrub(_server_text(exc))
            code = match.group(1) if (match := _RESP_CODE.match(said)) else None
            if code == "PRIVACYREQUIRED":
                return TLSError(f"{server} requires TLS before login: {said}", hint=TLS_HINT)
            if code in ("UNAVAILABLE", "SERVERBUG", "LIMIT", "INUSE"):
                return ProtocolError(f"{server} could not log in {self.username}: {said}")
            return AuthenticationError(
                f"The IMAP server {self.host} refused the user name or password for "
                f"{self.username} ({said})",
                hint=AUTH_HINT,
            )
        if isinstance(exc, ssl.SSLCertVerificationError):
            why = exc.verify_message or exc.reason or "certificate verify failed"
            return TLSError(f"{server} sent a certificate that was rejected: {why}", hint=TLS_HINT)
        if isinstance(exc, ssl.SSLError):
            why = self._scrub(exc.reason or str(exc))
            return TLSError(f"The TLS handshake with {where} failed: {why}", hint=TLS_HINT)
        if isinstance(exc, imaplib.IMAP4.abort | EOFError):
            why = self._scrub(_server_text(exc)) or "connection closed"
            message = f"{server} dropped the connection during {action}: {why}"
        elif isinstance(exc, TimeoutError):
            message = f"{server} did not answer in time ({action})"
        elif isinstance(exc, ConnectionRefusedError):
            message = f"{server} refused the connection"
        elif isinstance(exc, socket.gaierror):
            message = f"The host name {self.host} could not be resolved"
        elif isinstance(exc, OSError):
            why = self._scrub(exc.strerror or str(exc))
            message = f"{server} could not be reached ({action}): {why}"
        else:  # NO or BAD
            return ProtocolError(
                f"The IMAP server {self.host} rejected {action}: {self._scrub(_server_text(exc))}"
            )
        return NetworkError(message, hint=NETWORK_HINT)


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def assign_roles(folders: Sequence[tuple[str, str | None, set[str]]]) -> list[FolderRole]:
    """Roles for (name, delimiter, lower-case LIST attributes) triples, in the same order.

    INBOX is INBOX; a SPECIAL-USE attribute wins; a role no folder claims by attribute goes
    to the folder with the best-ranked well-known name (one folder per role).
    """
    roles: list[FolderRole] = []
    claimed: set[FolderRole] = set()
    for name, _, attrs in folders:
        role = FolderRole.INBOX if name.upper() == "INBOX" else FolderRole.OTHER
        if role is FolderRole.OTHER:
            role = next(
                (SPECIAL_USE_ROLES[a] for a in sorted(attrs) if a in SPECIAL_USE_ROLES), role
            )
        roles.append(role)
        claimed.add(role)
    for role, names in NAME_ROLES.items():
        if role in claimed:
            continue
        best: tuple[int, int] | None = None
        for index, (name, delimiter, _) in enumerate(folders):
            if roles[index] is not FolderRole.OTHER:
                continue
            rank = _name_rank(name, delimiter, names)
            if rank is not None and (best is None or rank < best[0]):
                best = (rank, index)
        if best is not None:
            roles[best[1]] = role
    return roles


def _name_rank(name: str, delimiter: str | None, names: tuple[str, ...]) -> int | None:
    lowered = name.lower()
    candidates = [lowered]
    for sep in {delimiter or ".", ".", "/"}:
        if lowered.startswith("inbox" + sep):
            candidates.append(lowered[len("inbox" + sep) :])
    ranks = [names.index(c) for c in candidates if c in names]
    return min(ranks) if ranks else None


def default_sync_folders(folders: Sequence[FolderInfo]) -> list[str]:
    """The folders a new mailbox syncs by default: INBOX and the Sent folder."""
    chosen = [f.name for f in folders if f.role is FolderRole.INBOX][:1]
    chosen += [f.name for f in folders if f.role is FolderRole.SENT][:1]
    return chosen


def connect(settings: ServerSettings, *, ssl_context: ssl.SSLContext | None = None) -> ImapSource:
    """Shorthand for `ImapSource.connect`."""
    return ImapSource.connect(settings, ssl_context=ssl_context)

"""An IMAP proxy that makes the test Dovecot look like Gmail (its documented IMAP extensions).

Gmail cannot run here, so this is the one stand-in for it: a proxy on 127.0.0.1 in front
of Dovecot's plain IMAP port that behaves as Google's "IMAP Extensions" page and its
bandwidth-limit answers describe:

- `X-GM-EXT-1` is added to every CAPABILITY list (the greeting's, LOGIN's and CAPABILITY
  answers); `QRESYNC` is hidden (Gmail offers CONDSTORE, not QRESYNC);
- LIST shows Gmail's folders with their SPECIAL-USE attributes: `[Gmail]/All Mail` (\\All),
  `[Gmail]/Sent Mail` (\\Sent), `[Gmail]/Drafts`, `[Gmail]/Trash`, `[Gmail]/Spam`,
  `[Gmail]/Important`, `[Gmail]/Starred`; Dovecot's own Sent, Drafts, Trash and Junk are
  hidden (a Gmail account has none);
- `UID FETCH … (X-GM-MSGID X-GM-THRID X-GM-LABELS …)`: a stable 64-bit message id, a thread
  id and the labels the message carries (`\\Inbox`, `\\Sent`, `"Customers"` …);
- `UID SEARCH X-GM-RAW "in:inbox"` (also `in:sent`, `in:LABEL`, `label:LABEL`);
- `unreadable`: Message-IDs whose body FETCH is answered `BODY[] NIL` (the literal Dovecot
  sent is dropped), as a server that lists a message it cannot send does (tests of the
  quarantine, sync/quarantine.py);
- a label change (`deliver_label`, `remove_label`) raises the message's MODSEQ in All Mail,
  as Gmail does, so HIGHESTMODSEQ, CHANGEDSINCE and IDLE see it;
- `listed_sizes`: X-GM-MSGID → the RFC822.SIZE told for it in a UID FETCH listing (a
  message listed over the message size limit, without sending that much);
- a daily download quota (`daily_quota` bytes of FETCH literals): past it, every FETCH of
  a body is answered `NO [OVERQUOTA] Account exceeded command or bandwidth limits.
  (Failure)`, as Gmail answers, until `new_day()`.

How labels are modelled on Dovecot (the choice this proxy rests on): a Gmail message lives
once in `[Gmail]/All Mail`, and each label is a Dovecot folder holding a copy of the same
message (INBOX for \\Inbox, `[Gmail]/Sent Mail` for \\Sent, a folder named after any other
label). `deliver(user, raw, labels)` seeds exactly that. A message's labels are the
folders other than All Mail that hold a message with its Message-ID; its X-GM-MSGID is a
hash of that Message-ID (63 bits, so it is the same in every folder and in every session,
as Gmail's is). The proxy reads those facts over its own master-user session to Dovecot
(`DovecotServer.master_login`), never over the client's connection, except for the one
command it rewrites.

The proxy speaks IMAP in lock-step: it reads one client command (with its literals), then
relays the server's answer up to the tagged line, rewriting as above. IDLE is relayed
both ways until its tagged end. Only UID FETCH carries the X-GM items (sequence-number
FETCH is passed through unchanged).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import hashlib
import imaplib
import re
import socket
import threading
from collections.abc import Iterable
from typing import BinaryIO

from mailroom_testing.dovecot import DovecotError, DovecotServer

ALL_MAIL = "[Gmail]/All Mail"
SENT_MAIL = "[Gmail]/Sent Mail"
# Gmail's folders and their SPECIAL-USE attributes (Google's LIST example).
SPECIAL = {
    ALL_MAIL: "\\All",
    SENT_MAIL: "\\Sent",
    "[Gmail]/Drafts": "\\Drafts",
    "[Gmail]/Trash": "\\Trash",
    "[Gmail]/Spam": "\\Junk",
    "[Gmail]/Important": "\\Important",
    "[Gmail]/Starred": "\\Flagged",
}
# System labels as X-GM-LABELS shows them, and the folder that stands for each.
LABEL_FOLDERS = {
    "\\Inbox": "INBOX",
    "\\Sent": SENT_MAIL,
    "\\Draft": "[Gmail]/Drafts",
    "\\Important": "[Gmail]/Important",
    "\\Starred": "[Gmail]/Starred",
}
FOLDER_LABELS = {folder: label for label, folder in LABEL_FOLDERS.items()}
NOT_LABELS = {ALL_MAIL, "[Gmail]/Trash", "[Gmail]/Spam"}
HIDDEN = {"Sent", "Drafts", "Trash", "Junk"}  # Dovecot's own auto-created folders
TOUCH_KEYWORD = "$GmailLabelChanged"  # set and cleared to raise a message's MODSEQ
OVERQUOTA = b"NO [OVERQUOTA] Account exceeded command or bandwidth limits. (Failure)"

_LITERAL = re.compile(rb"\{(\d+)\+?\}$")
_GM_ITEM = re.compile(rb"\s*X-GM-(MSGID|THRID|LABELS)\b", re.I)
_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE \d+")
_FETCH = re.compile(rb"^\* (\d+) FETCH \(")
_LIST = re.compile(rb'^\* LIST \(([^)]*)\) (NIL|"[^"]*") (.+)$')
_MSGID = re.compile(rb"^Message-ID:\s*(\S+)", re.I | re.M)
_BODY = re.compile(rb"BODY(\.PEEK)?\[|RFC822(?![.]SIZE)|BINARY", re.I)
_RAW = re.compile(rb'X-GM-RAW\s+"([^"]*)"', re.I)


def gm_msgid(message_id: str) -> int:
    """The X-GM-MSGID this proxy gives a Message-ID: stable, positive, 63 bits."""
    digest = hashlib.sha256(message_id.strip().strip("<>").encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _label_atom(label: str) -> bytes:
    if label.startswith("\\") or re.fullmatch(r"[A-Za-z0-9_.-]+", label):
        return label.encode()
    return _quote(label).encode()


class GmailProxy:
    """Listen on a free port of 127.0.0.1; relay to the Dovecot's plain IMAP port as Gmail."""

    def __init__(self, dovecot: DovecotServer, *, daily_quota: int | None = None) -> None:
        self.dovecot = dovecot
        self.daily_quota = daily_quota
        self.used = 0  # bytes of FETCH literals sent today
        self.body_fetches = 0  # FETCH commands that asked for message bodies
        self.commands: list[bytes] = []  # every client command line (tests read them)
        self.bodies: list[int] = []  # UIDs whose whole body (BODY[]) was sent, in order
        self.unreadable: set[str] = set()  # Message-IDs (no <>) answered `BODY[] NIL`
        self.nil_bodies: list[int] = []  # UIDs answered `BODY[] NIL`, in order
        self.listed_sizes: dict[int, int] = {}  # X-GM-MSGID → RFC822.SIZE told in listings
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.host = "127.0.0.1"
        self._closed = threading.Event()
        self._conns: list[socket.socket] = []
        self._prepared: set[str] = set()
        threading.Thread(target=self._accept, daemon=True).start()

    # -- seeding ---------------------------------------------------------------------------

    def deliver(
        self,
        user: str,
        raw: bytes,
        labels: Iterable[str] = ("\\Inbox",),
        *,
        internaldate: dt.datetime | None = None,
    ) -> int:
        """Seed one Gmail message: once in All Mail, and a copy in each label's folder.

        Returns its X-GM-MSGID."""
        self.prepare(user)
        self.dovecot.append(user, ALL_MAIL, raw, internaldate=internaldate)
        for label in labels:
            folder = LABEL_FOLDERS.get(label, label)
            self._ensure(user, folder)
            self.dovecot.append(user, folder, raw, internaldate=internaldate)
        found = _MSGID.search(raw)
        return gm_msgid(found.group(1).decode() if found else "")

    def deliver_label(self, user: str, raw: bytes, label: str) -> None:
        """Give a delivered message one more label (a copy in that label's folder); its
        MODSEQ in All Mail rises, as Gmail's does on any label change (`_touch`)."""
        folder = LABEL_FOLDERS.get(label, label)
        self._ensure(user, folder)
        self.dovecot.append(user, folder, raw)
        self._touch(user, raw)

    def remove_label(self, user: str, raw: bytes, label: str) -> None:
        """Take a label off a delivered message (its copy in that label's folder goes);
        its MODSEQ in All Mail rises (`_touch`)."""
        folder = LABEL_FOLDERS.get(label, label)
        conn = self.dovecot.session(user)
        conn.select(_quote(folder))
        for uid in self._uids_of(conn, raw):
            conn.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Deleted)")
        conn.expunge()
        conn.close()
        self._touch(user, raw)

    def _touch(self, user: str, raw: bytes) -> None:
        """Raise the message's MODSEQ in All Mail without changing its flags, so that a
        label change shows in CONDSTORE's HIGHESTMODSEQ, CHANGEDSINCE and IDLE as on Gmail
        (a label-only change there raises the message's MODSEQ; on Dovecot a copy in
        another folder does not): a keyword set and cleared again, each STORE one MODSEQ."""
        conn = self.dovecot.session(user)
        conn.select(_quote(ALL_MAIL))
        for uid in self._uids_of(conn, raw):
            for op in ("+FLAGS.SILENT", "-FLAGS.SILENT"):
                typ, data = conn.uid("STORE", str(uid), op, f"({TOUCH_KEYWORD})")
                if typ != "OK":
                    raise DovecotError(f"STORE {op} {TOUCH_KEYWORD} failed: {data!r}")
        conn.close()

    @staticmethod
    def _uids_of(conn: imaplib.IMAP4, raw: bytes) -> list[int]:
        """The UIDs of the selected folder's messages with `raw`'s Message-ID."""
        found = _MSGID.search(raw)
        if found is None:
            raise ValueError("the message has no Message-ID to find it by")
        typ, data = conn.uid("SEARCH", "HEADER", "Message-ID", found.group(1).decode())
        if typ != "OK":
            raise DovecotError(f"UID SEARCH failed: {data!r}")
        return [int(u) for u in (data[0] or b"").split()]

    def rebuild_all_mail(self, user: str, raws: Iterable[bytes]) -> None:
        """Delete and re-create All Mail with these messages: a new UIDVALIDITY (as after a
        server-side rebuild), the same X-GM-MSGIDs (Dovecot never reuses a UIDVALIDITY:
        its dovecot-uidvalidity file counts up)."""
        conn = self.dovecot.session(user)
        conn.delete(_quote(ALL_MAIL))
        self._ensure(user, ALL_MAIL)
        for raw in raws:
            self.dovecot.append(user, ALL_MAIL, raw)

    def prepare(self, user: str) -> None:
        """Create Gmail's system folders for `user` (once)."""
        if user in self._prepared:
            return
        for folder in SPECIAL:
            self._ensure(user, folder)
        self._prepared.add(user)

    def _ensure(self, user: str, folder: str) -> None:
        if folder == "INBOX":
            return
        with contextlib.suppress(DovecotError):  # it exists already
            self.dovecot.create_folder(user, folder)

    # -- quota -----------------------------------------------------------------------------

    def new_day(self) -> None:
        """The daily download quota starts again (Gmail lifts the block)."""
        with self._lock:
            self.used = 0

    @property
    def over_quota(self) -> bool:
        """Whether today's downloads reached the quota."""
        return self.daily_quota is not None and self.used >= self.daily_quota

    def close(self) -> None:
        """Stop listening and close every relayed connection."""
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.close()

    # -- plumbing ----------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection((self.dovecot.host, self.dovecot.imap_port))
            self._conns += [client, server]
            session = _Session(self, client, server)
            threading.Thread(target=session.run, daemon=True).start()

    def _count(self, nbytes: int) -> None:
        with self._lock:
            self.used += nbytes


class _Session:
    """One client connection, relayed in lock-step."""

    def __init__(self, proxy: GmailProxy, client: socket.socket, server: socket.socket) -> None:
        self.proxy = proxy
        self.client, self.server = client, server
        self.cin: BinaryIO = client.makefile("rb")
        self.sin: BinaryIO = server.makefile("rb")
        self.user: str | None = None
        self.selected: str | None = None
        self._side: imaplib.IMAP4 | None = None
        self.broken: set[int] = set()  # UIDs of the current FETCH answered `BODY[] NIL`

    def run(self) -> None:
        try:
            self.client.sendall(_capabilities(self.sin.readline()))
            while line := self.cin.readline():
                self._command(line)
        except (OSError, ValueError, imaplib.IMAP4.error):
            pass
        finally:
            for sock in (self.client, self.server):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                    sock.close()
            if self._side is not None:
                with contextlib.suppress(Exception):
                    self._side.logout()

    # -- one command --------------------------------------------------------------------

    def _command(self, line: bytes) -> None:
        parts = line.rstrip(b"\r\n").split(b" ")
        tag = parts[0]
        words = [p.upper() for p in parts[1:4]]
        verb = words[0] if words else b""
        uid = verb == b"UID" and len(words) > 1
        sub = words[1] if uid else verb
        self.proxy.commands.append(line.rstrip(b"\r\n"))
        if verb == b"LOGIN" and len(parts) > 2:
            self.user = parts[2].strip(b'"').decode(errors="replace")
        if uid and sub == b"SEARCH" and _RAW.search(line):
            self._raw_search(tag, line)
            return
        if sub == b"FETCH" and _BODY.search(line):
            self.proxy.body_fetches += 1
            if self.proxy.over_quota:
                self.client.sendall(tag + b" " + OVERQUOTA + b"\r\n")
                return
        wanted: list[bytes] = []
        if uid and sub == b"FETCH" and _GM_ITEM.search(line):
            wanted = [m.group(1).upper() for m in _GM_ITEM.finditer(line)]
            line = _strip_gm(line)
        meta = self._meta(line) if wanted else {}
        self.broken = self._broken(line) if uid and sub == b"FETCH" else set()
        self._forward(line)
        self._relay(tag, verb, sub, wanted, meta, line)

    def _broken(self, line: bytes) -> set[int]:
        """The UIDs of this UID FETCH whose body is to be answered NIL (`unreadable`)."""
        if not self.proxy.unreadable or self.selected is None or not _BODY.search(line):
            return set()
        spec = line.split(b" ")[3].decode()
        return {
            uid
            for uid, msgid in self._ids(self.selected, spec).items()
            if msgid.strip("<>") in self.proxy.unreadable
        }

    def _forward(self, line: bytes) -> None:
        self.server.sendall(line)

    def _relay(
        self,
        tag: bytes,
        verb: bytes,
        sub: bytes,
        wanted: list[bytes],
        meta: dict[int, tuple[int, int, list[str]]],
        sent: bytes,
    ) -> None:
        """The server's answer up to `tag`'s tagged line, rewritten as Gmail answers."""
        last_client = sent
        while True:
            line = self.sin.readline()
            if not line:
                raise OSError("the server closed the connection")
            if line.startswith(b"+"):
                self.client.sendall(line)
                if verb == b"IDLE":
                    self._idle(tag)
                    return
                last_client = self._continuation(last_client, verb)
                continue
            if line.startswith(tag + b" "):
                if line.startswith(tag + b" OK") and verb in (b"SELECT", b"EXAMINE"):
                    self.selected = _folder_arg(sent)
                self.client.sendall(_capabilities(line))
                return
            if self.broken and self._nil_body(line):
                continue
            line = self._rewrite(line, verb, sub, wanted, meta)
            if line:
                self.client.sendall(line)
                self._literals(line, fetch=sub == b"FETCH")

    def _rewrite(
        self,
        line: bytes,
        verb: bytes,
        sub: bytes,
        wanted: list[bytes],
        meta: dict[int, tuple[int, int, list[str]]],
    ) -> bytes:
        """One untagged server line as Gmail sends it (b"" for a line Gmail would not send)."""
        if verb == b"LIST" and line.startswith(b"* LIST"):
            line = _list_line(line)
        if wanted:
            line = self._listed_size(line, meta)
            line = _add_gm(line, wanted, meta)
        if sub == b"FETCH" and b"BODY[] {" in line and (uid := _UID.search(line)):
            self.proxy.bodies.append(int(uid.group(1)))
        return _capabilities(line)

    def _nil_body(self, line: bytes) -> bool:
        """Send a FETCH line of a `broken` UID with `BODY[] NIL` instead of its literal
        (read from the server and dropped); False for any other line."""
        body = line.rstrip(b"\r\n")
        found, uid = _LITERAL.search(body), _UID.search(line)
        if found is None or uid is None or int(uid.group(1)) not in self.broken:
            return False
        if not body[: found.start()].endswith(b"BODY[] "):
            return False
        self.sin.read(int(found.group(1)))
        rest = self.sin.readline()
        self.proxy.nil_bodies.append(int(uid.group(1)))
        self.client.sendall(body[: found.start()] + b"NIL" + rest)
        return True

    def _listed_size(self, line: bytes, meta: dict[int, tuple[int, int, list[str]]]) -> bytes:
        """The FETCH line with the RFC822.SIZE `listed_sizes` tells for its message."""
        uid = _UID.search(line)
        if not self.proxy.listed_sizes or uid is None or int(uid.group(1)) not in meta:
            return line
        size = self.proxy.listed_sizes.get(meta[int(uid.group(1))][0])
        if size is None:
            return line
        return _SIZE.sub(b"RFC822.SIZE %d" % size, line, count=1)

    def _literals(self, line: bytes, *, fetch: bool) -> None:
        """Relay the literals (and the rest of the line after each) of one server line."""
        while found := _LITERAL.search(line.rstrip(b"\r\n")):
            size = int(found.group(1))
            data = self.sin.read(size)
            if fetch and line.startswith(b"* "):
                self.proxy._count(size)
            self.client.sendall(data)
            line = self.sin.readline()
            self.client.sendall(line)

    def _continuation(self, last: bytes, verb: bytes) -> bytes:
        """After a `+`: the client's literal and the rest of its line, or one line."""
        found = _LITERAL.search(last.rstrip(b"\r\n"))
        if found:
            data = self.cin.read(int(found.group(1)))
            rest = self.cin.readline()
            self.server.sendall(data + rest)
            return rest
        line = self.cin.readline()
        if verb == b"AUTHENTICATE" and self.user is None:
            self.user = _sasl_user(line)
        self.server.sendall(line)
        return line

    def _idle(self, tag: bytes) -> None:
        """IDLE: the server's pushes go on while the client's DONE is awaited."""
        done = threading.Event()

        def pushes() -> None:
            with contextlib.suppress(OSError, ValueError):
                while line := self.sin.readline():
                    self.client.sendall(_capabilities(line))
                    if line.startswith(tag + b" "):
                        break
            done.set()

        relay = threading.Thread(target=pushes, daemon=True)
        relay.start()
        line = self.cin.readline()
        self.server.sendall(line)
        relay.join()

    # -- Gmail's own answers -----------------------------------------------------------------

    def _side_session(self) -> imaplib.IMAP4:
        if self.user is None:
            raise OSError("X-GM items before a login")
        if self._side is None:
            self._side = self.proxy.dovecot.master_login(self.user)
        return self._side

    def _ids(self, folder: str, spec: str = "1:*") -> dict[int, str]:
        """UID → Message-ID of the folder's messages in `spec` (over the side session)."""
        side = self._side_session()
        typ, data = side.select(_quote(folder), readonly=True)
        if typ != "OK" or int(data[0] or 0) == 0:
            return {}
        typ, data = side.uid("FETCH", spec, "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        found: dict[int, str] = {}
        for item in data if typ == "OK" else []:
            if isinstance(item, tuple):
                uid, msgid = _UID.search(item[0]), _MSGID.search(item[1])
                if uid:
                    found[int(uid.group(1))] = msgid.group(1).decode() if msgid else ""
        return found

    def _labels(self) -> dict[str, list[str]]:
        """Message-ID → the labels of the message (the folders that hold it)."""
        side = self._side_session()
        typ, data = side.list()
        labels: dict[str, list[str]] = {}
        for item in data if typ == "OK" else []:
            found = _LIST.match(b"* LIST " + item) if isinstance(item, bytes) else None
            if found is None or b"\\noselect" in found.group(1).lower():
                continue
            folder = found.group(3).strip(b'"').decode()
            if folder in NOT_LABELS or folder in HIDDEN:
                continue
            label = FOLDER_LABELS.get(folder, folder)
            for msgid in self._ids(folder).values():
                labels.setdefault(msgid, []).append(label)
        return labels

    def _meta(self, line: bytes) -> dict[int, tuple[int, int, list[str]]]:
        """UID → (X-GM-MSGID, X-GM-THRID, X-GM-LABELS) for the UIDs of a UID FETCH."""
        spec = line.split(b" ")[3].decode()
        if self.selected is None:
            return {}
        labels = self._labels()
        meta = {}
        for uid, msgid in self._ids(self.selected, spec).items():
            ident = gm_msgid(msgid)
            meta[uid] = (ident, ident, sorted(labels.get(msgid, [])))
        return meta

    def _raw_search(self, tag: bytes, line: bytes) -> None:
        """UID SEARCH X-GM-RAW "in:LABEL" / "label:LABEL": the selected folder's UIDs."""
        query = _RAW.search(line)
        term = query.group(1).decode().strip() if query else ""
        kind, _, name = term.partition(":")
        if kind.lower() not in ("in", "label") or not name or self.selected is None:
            self.client.sendall(tag + b" BAD Could not parse command\r\n")
            return
        system = {"inbox": "\\Inbox", "sent": "\\Sent", "drafts": "\\Draft"}
        label = system.get(name.lower(), name)
        labels = self._labels()
        uids = sorted(
            uid for uid, msgid in self._ids(self.selected).items() if label in labels.get(msgid, [])
        )
        answer = b"* SEARCH" + b"".join(b" %d" % u for u in uids) + b"\r\n"
        self.client.sendall(answer + tag + b" OK SEARCH completed (Success)\r\n")


def _capabilities(line: bytes) -> bytes:
    """Add X-GM-EXT-1 to a CAPABILITY list and drop QRESYNC (Gmail has no QRESYNC)."""
    if b"CAPABILITY" not in line:
        return line
    line = line.replace(b" QRESYNC", b"")
    if b"[CAPABILITY " in line:
        head, _, tail = line.partition(b"[CAPABILITY ")
        caps, _, rest = tail.partition(b"]")
        return head + b"[CAPABILITY " + caps + b" X-GM-EXT-1]" + rest
    if line.startswith(b"* CAPABILITY "):
        return line.rstrip(b"\r\n") + b" X-GM-EXT-1\r\n"
    return line


def _list_line(line: bytes) -> bytes:
    """A LIST line as Gmail would send it, or b"" for a folder Gmail does not have."""
    found = _LIST.match(line.rstrip(b"\r\n"))
    if found is None:
        return line
    attrs, delim, name = found.groups()
    folder = name.strip(b'"').decode(errors="replace")
    if folder in HIDDEN:
        return b""
    special = SPECIAL.get(folder)
    if special is None:
        return line
    kept = [a for a in attrs.split() if a.lower() not in (b"\\sent", b"\\drafts", b"\\trash")]
    kept.append(special.encode())
    return b"* LIST (" + b" ".join(kept) + b") " + delim + b" " + name + b"\r\n"


def _strip_gm(line: bytes) -> bytes:
    """The UID FETCH without its X-GM items (UID alone if nothing else is left)."""
    body = line.rstrip(b"\r\n")
    stripped = _GM_ITEM.sub(b"", body)
    stripped = stripped.replace(b"( ", b"(").replace(b"()", b"(UID)")
    return stripped + b"\r\n"


def _add_gm(line: bytes, wanted: list[bytes], meta: dict[int, tuple[int, int, list[str]]]) -> bytes:
    """Put the X-GM items into a FETCH answer's first line (after "FETCH (")."""
    head = _FETCH.match(line)
    uid = _UID.search(line)
    if head is None or uid is None or int(uid.group(1)) not in meta:
        return line
    msgid, thrid, labels = meta[int(uid.group(1))]
    items = []
    for item in wanted:
        if item == b"MSGID":
            items.append(b"X-GM-MSGID %d" % msgid)
        elif item == b"THRID":
            items.append(b"X-GM-THRID %d" % thrid)
        else:
            items.append(b"X-GM-LABELS (" + b" ".join(_label_atom(x) for x in labels) + b")")
    at = head.end()
    return line[:at] + b" ".join(items) + b" " + line[at:]


def _folder_arg(line: bytes) -> str:
    """The folder name of a SELECT/EXAMINE command line."""
    rest = line.rstrip(b"\r\n").split(b" ", 2)[2]
    if rest.startswith(b'"'):
        return rest[1 : rest.index(b'"', 1)].decode(errors="replace")
    return rest.split(b" ")[0].decode(errors="replace")


def _sasl_user(line: bytes) -> str | None:
    """The user name in an XOAUTH2 or OAUTHBEARER initial response."""
    try:
        text = base64.b64decode(line.strip()).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return None
    found = re.search(r"user=([^\x01]+)|n,a=([^,]+),", text)
    return (found.group(1) or found.group(2)) if found else None

"""A hostile (or merely broken) IMAP or POP3 server on 127.0.0.1, scripted per test.

The real Dovecot (dovecot.py) answers correctly and the fault proxy (fault_proxy.py) can
only cut, stall or replace one line of its answers; neither can send an answer no real
server sends. This one speaks just enough IMAP4rev1 (RFC 3501) or POP3 (RFC 1939) to get
a client logged in, and then answers each command as the test scripted it:

```python
server = HostileServer()                       # IMAP, plain text, any login accepted
server.on("STATUS", answer_lines(b'* STATUS "INBOX" (MESSAGES 1 UIDNEXT abc UIDVALIDITY 7)',
                                 b"{tag} OK STATUS done"))
server.on("LIST", endless_list())              # `* LIST` lines until the client hangs up
```

An answer is a function of the command's tag and arguments returning the chunks to send
(`Answer`); `{tag}` in a chunk is replaced by the command's tag. Helpers build the usual
hostile answers: `endless_list`, `giant_literal`, `drip` (one byte at a time, slowly),
`answer_lines` (garbage numbers, unparseable FETCH). Commands without a script get a
sane default (an empty INBOX). Every endless answer stops after `limit` bytes so a test
of a client without limits fails instead of filling the machine's memory.

`ScriptedFolder` serves an INBOX of numbered messages over STATUS, EXAMINE and UID
FETCH, where any message may be answered without its bytes (`UNREADABLE`: `BODY[] NIL`)
or left out of the body FETCH while still listed (`LEFT_OUT`); the test may change the
messages between two syncs (a broken server fixed, new mail arriving).

POP3 (`HostileServer(pop3=True)`): USER/PASS accepted, `messages` served by STAT, LIST,
UIDL and RETR (dot-stuffed, any line length), so a message with one 10,000-byte line or
an endless RETR is one `messages` entry or one `on("RETR", …)` away.

Nothing here is used by Mailroom itself: tests and bench/ only.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

Answer = Callable[[bytes, bytes], Iterable[bytes]]
"""A scripted answer: (tag, arguments) → the chunks to send, `{tag}` filled in."""

DEFAULT_LIMIT = 256 << 20  # bytes an endless answer sends before giving up
HANG_UP = b""
"""A chunk that closes the connection instead of sending anything."""


def answer_lines(*lines: bytes) -> Answer:
    """Send these lines (CRLF added), with `{tag}` replaced by the command's tag."""

    def answer(tag: bytes, args: bytes) -> Iterator[bytes]:
        for line in lines:
            yield line + b"\r\n"

    return answer


def endless_list(*, limit: int = DEFAULT_LIMIT) -> Answer:
    """`* LIST () "/" "folder-N"` lines, N = 1, 2, …, until the client hangs up (or `limit`
    bytes went out: then a tagged OK, so a client without a cap ends instead of hanging)."""

    def answer(tag: bytes, args: bytes) -> Iterator[bytes]:
        sent, n = 0, 0
        block = 2000
        while sent < limit:
            chunk = b"".join(b'* LIST () "/" "folder-%d"\r\n' % i for i in range(n, n + block))
            n += block
            sent += len(chunk)
            yield chunk
        yield b"{tag} OK LIST done\r\n"

    return answer


def giant_literal(size: int, *, uid: int = 1, limit: int = DEFAULT_LIMIT) -> Answer:
    """A FETCH answer announcing a `size`-byte BODY[] literal; sends at most `limit` bytes
    of it, then hangs up (the announced size alone is the attack)."""

    def answer(tag: bytes, args: bytes) -> Iterator[bytes]:
        yield b"* 1 FETCH (UID %d RFC822.SIZE %d BODY[] {%d}\r\n" % (uid, size, size)
        sent = 0
        piece = b"x" * 65536
        while sent < min(size, limit):
            yield piece
            sent += len(piece)
        if size <= limit:
            yield b")\r\n{tag} OK FETCH done\r\n"
        else:
            yield HANG_UP

    return answer


def drip(data: bytes, *, every: float) -> Answer:
    """`data` one byte at a time, `every` seconds apart (a server that never times out)."""

    def answer(tag: bytes, args: bytes) -> Iterator[bytes]:
        for byte in data.replace(b"{tag}", tag):
            time.sleep(every)
            yield bytes([byte])

    return answer


@dataclass
class PopMessage:
    """One message of the hostile POP3 maildrop."""

    uidl: str
    data: bytes


@dataclass
class _Script:
    answers: dict[bytes, Answer] = field(default_factory=dict)
    seen: list[bytes] = field(default_factory=list)


class HostileServer:
    """Listen on a free port of 127.0.0.1; one thread per connection runs the script.

    `seen` lists every command line received (passwords included: tests only), so a
    test can check what the client asked before it gave up.
    """

    def __init__(self, *, pop3: bool = False, capabilities: bytes = b"IMAP4rev1") -> None:
        self.pop3 = pop3
        self.capabilities = capabilities
        self.messages: list[PopMessage] = []
        self.greeting: Answer | None = None  # IMAP: replaces the greeting (tag b"*")
        self._script = _Script()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.host = "127.0.0.1"
        self.port: int = self._listener.getsockname()[1]
        self._closed = threading.Event()
        self._conns: list[socket.socket] = []
        self.connections = 0
        threading.Thread(target=self._accept, name="hostile-server", daemon=True).start()

    @property
    def seen(self) -> list[bytes]:
        """Every command line received, in order."""
        return self._script.seen

    def on(self, command: str, answer: Answer) -> None:
        """Answer every `command` (e.g. "LIST", "UID FETCH", "RETR") with `answer`."""
        self._script.answers[command.upper().encode()] = answer

    def close(self) -> None:
        """Stop listening and drop every connection."""
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                conn.close()

    def __enter__(self) -> HostileServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- plumbing ----------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._conns.append(conn)
            self.connections += 1
            serve = self._serve_pop3 if self.pop3 else self._serve_imap
            threading.Thread(target=self._run, args=(serve, conn), daemon=True).start()

    def _run(self, serve: Callable[[socket.socket], None], conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            serve(conn)
        with contextlib.suppress(OSError):
            conn.close()

    def _lines(self, conn: socket.socket) -> Iterator[bytes]:
        buffer = b""
        while not self._closed.is_set():
            while b"\r\n" in buffer:
                line, buffer = buffer.split(b"\r\n", 1)
                self._script.seen.append(line)
                yield line
            chunk = conn.recv(65536)
            if not chunk:
                return
            buffer += chunk

    def _send(self, conn: socket.socket, answer: Answer, tag: bytes, args: bytes) -> None:
        for chunk in answer(tag, args):
            if chunk == HANG_UP:
                raise OSError("hanging up, as scripted")
            conn.sendall(chunk.replace(b"{tag}", tag))

    def _serve_imap(self, conn: socket.socket) -> None:
        if self.greeting is not None:
            self._send(conn, self.greeting, b"*", b"")
        else:
            conn.sendall(b"* OK [CAPABILITY " + self.capabilities + b"] hostile server ready\r\n")
        for line in self._lines(conn):
            tag, _, rest = line.partition(b" ")
            name, _, args = rest.partition(b" ")
            name = name.upper()
            if name == b"UID":
                sub, _, args = args.partition(b" ")
                name = b"UID " + sub.upper()
            if name == b"DONE":  # the end of IDLE carries no tag
                continue
            answer = self._script.answers.get(name) or _IMAP_DEFAULTS.get(name)
            if answer is None:
                conn.sendall(tag + b" BAD unknown command\r\n")
                continue
            if name == b"CAPABILITY" and name not in self._script.answers:
                conn.sendall(b"* CAPABILITY " + self.capabilities + b"\r\n")
            self._send(conn, answer, tag, args)
            if name == b"LOGOUT":
                return

    def _serve_pop3(self, conn: socket.socket) -> None:
        conn.sendall(b"+OK hostile POP3 server ready\r\n")
        for line in self._lines(conn):
            name, _, args = line.partition(b" ")
            name = name.upper()
            answer = self._script.answers.get(name)
            if answer is not None:
                self._send(conn, answer, b"", args)
            else:
                conn.sendall(self._pop3_default(name, args))
            if name == b"QUIT":
                return

    def _pop3_default(self, name: bytes, args: bytes) -> bytes:
        if name in (b"USER", b"PASS", b"NOOP", b"QUIT", b"DELE", b"RSET"):
            return b"+OK\r\n"
        if name == b"STAT":
            total = sum(len(m.data) for m in self.messages)
            return b"+OK %d %d\r\n" % (len(self.messages), total)
        if name in (b"LIST", b"UIDL"):
            rows = [
                b"%d %s" % (n, str(len(m.data)).encode() if name == b"LIST" else m.uidl.encode())
                for n, m in enumerate(self.messages, start=1)
            ]
            return b"+OK\r\n" + b"".join(r + b"\r\n" for r in rows) + b".\r\n"
        if name == b"RETR":
            message = self.messages[int(args) - 1]
            body = b"".join(
                (b"." + ln if ln.startswith(b".") else ln) + b"\r\n"
                for ln in message.data.split(b"\r\n")
            )
            return b"+OK %d octets\r\n" % len(message.data) + body + b".\r\n"
        return b"-ERR unknown command\r\n"


_IMAP_DEFAULTS: dict[bytes, Answer] = {
    b"CAPABILITY": answer_lines(b"{tag} OK CAPABILITY done"),
    b"LOGIN": answer_lines(b"{tag} OK LOGIN done"),
    b"NOOP": answer_lines(b"{tag} OK NOOP done"),
    b"ENABLE": answer_lines(b"{tag} OK ENABLE done"),
    b"LOGOUT": answer_lines(b"* BYE see you", b"{tag} OK LOGOUT done"),
    b"LIST": answer_lines(b'* LIST (\\HasNoChildren) "/" INBOX', b"{tag} OK LIST done"),
    b"STATUS": answer_lines(
        b'* STATUS "INBOX" (MESSAGES 0 UIDNEXT 1 UIDVALIDITY 7)', b"{tag} OK STATUS done"
    ),
    b"EXAMINE": answer_lines(
        b"* 0 EXISTS",
        b"* OK [UIDVALIDITY 7] UIDs valid",
        b"* OK [UIDNEXT 1] next UID",
        b"{tag} OK [READ-ONLY] EXAMINE done",
    ),
    b"UID FETCH": answer_lines(b"{tag} OK FETCH done"),
    b"UID SEARCH": answer_lines(b"* SEARCH", b"{tag} OK SEARCH done"),
}


UNREADABLE = "unreadable"
"""A ScriptedFolder message answered `BODY[] NIL`: listed, never sent."""
LEFT_OUT = "left-out"
"""A ScriptedFolder message listed (sizes, flags, UID) but left out of the body FETCH."""


@dataclass
class ScriptedFolder:
    """An INBOX of `messages` (UID → bytes, UNREADABLE or LEFT_OUT) under `uidvalidity`,
    answered afresh at every command, so a test can change it between syncs."""

    messages: dict[int, bytes | str] = field(default_factory=dict)
    uidvalidity: int = 7
    listed_sizes: dict[int, int] = field(default_factory=dict)  # RFC822.SIZE lies, by UID

    def install(self, server: HostileServer) -> None:
        """Answer STATUS, EXAMINE and UID FETCH of `server` from this folder."""
        server.on("STATUS", self._status)
        server.on("EXAMINE", self._examine)
        server.on("UID FETCH", self._fetch)

    @property
    def uidnext(self) -> int:
        """One above the highest UID (RFC 3501 §2.3.1.1)."""
        return max(self.messages, default=0) + 1

    def _status(self, tag: bytes, args: bytes) -> Iterator[bytes]:
        yield b'* STATUS "INBOX" (MESSAGES %d UIDNEXT %d UIDVALIDITY %d)\r\n' % (
            len(self.messages),
            self.uidnext,
            self.uidvalidity,
        )
        yield b"{tag} OK STATUS done\r\n"

    def _examine(self, tag: bytes, args: bytes) -> Iterator[bytes]:
        yield b"* %d EXISTS\r\n" % len(self.messages)
        yield b"* OK [UIDVALIDITY %d] UIDs valid\r\n" % self.uidvalidity
        yield b"* OK [UIDNEXT %d] next UID\r\n" % self.uidnext
        yield b"{tag} OK [READ-ONLY] EXAMINE done\r\n"

    def _uids(self, spec: bytes) -> list[int]:
        top = max(self.messages, default=0)
        wanted: set[int] = set()
        for part in spec.split(b","):
            first, _, last = part.partition(b":")
            a = top if first == b"*" else int(first)
            b = a if not last else (top if last == b"*" else int(last))
            wanted.update(range(min(a, b), max(a, b) + 1))
        return sorted(uid for uid in wanted if uid in self.messages)

    def _fetch(self, tag: bytes, args: bytes) -> Iterator[bytes]:
        spec, _, items = args.partition(b" ")
        order = sorted(self.messages)
        for uid in self._uids(spec):
            n, data = order.index(uid) + 1, self.messages[uid]
            size = self.listed_sizes.get(uid, len(data) if isinstance(data, bytes) else 100)
            if b"BODY.PEEK[]" not in items:
                extra = b" RFC822.SIZE %d" % size if b"RFC822.SIZE" in items else b""
                extra += b" FLAGS ()" if b"FLAGS" in items else b""
                yield b"* %d FETCH (UID %d%s)\r\n" % (n, uid, extra)
            elif data == UNREADABLE:
                yield b"* %d FETCH (UID %d RFC822.SIZE 100 FLAGS () BODY[] NIL)\r\n" % (n, uid)
            elif isinstance(data, bytes):
                head = b"* %d FETCH (UID %d RFC822.SIZE %d FLAGS () BODY[] {%d}\r\n"
                yield head % (n, uid, size, size)
                yield data + b")\r\n"
        yield b"{tag} OK FETCH done\r\n"

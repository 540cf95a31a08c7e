"""A test instrument: no network call may run while its thread holds a database transaction.

On SQLite every transaction starts with BEGIN IMMEDIATE (mailroom.db.engine), so a
transaction left open across a socket call holds the write lock for as long as the remote
server takes, and every other company's request waits on it (ISSUE11 item 10).

`TxGuard` listens to SQLAlchemy's connection events on every Engine (`begin`, which is
where engine.py emits BEGIN IMMEDIATE, and `commit`/`rollback`, which end it) and keeps,
per thread, the connections with an open transaction. It wraps the Python socket calls
that talk to a peer (connect, send, sendall, recv, recv_into, SSL handshake, DNS
look-ups); such a call made by a thread that holds an open transaction is recorded as a
violation with its stack. Other threads (the aiosmtpd server, Dovecot helpers) never count.

Per thread, as the lock is: a transaction left open in one thread while another talks is
not seen. For web routes that is still exact in tests: FastAPI runs a request's sync
dependencies and its route one after another on anyio's worker pool, which hands the
same idle worker back each time when requests come one at a time (the TestClient).

Not counted: AF_UNIX sockets (asyncio's self-pipe, no network) and the database's own
traffic. SQLite has no socket; PostgreSQL's psycopg talks through libpq's C socket, which
never passes through Python's `socket` module, so it cannot show up here.
"""

from __future__ import annotations

import socket
import ssl
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import Engine, event

_SOCKET_CALLS = ("connect", "connect_ex", "send", "sendall", "recv", "recv_into")
_SSL_CALLS = ("do_handshake", "send", "sendall", "recv", "recv_into", "read", "write")


@dataclass
class Violation:
    """One network call made while the same thread held an open transaction."""

    call: str
    stack: str

    def __str__(self) -> str:
        return f"{self.call} inside a database transaction:\n{self.stack}"


@dataclass
class TxGuard:
    """Open transactions per thread, and the network calls made inside one."""

    open: dict[int, int] = field(default_factory=dict)  # id(Connection) -> thread ident
    violations: list[Violation] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def began(self, conn: Any) -> None:
        """A transaction began on `conn` in this thread."""
        with self._lock:
            self.open[id(conn)] = threading.get_ident()

    def ended(self, conn: Any) -> None:
        """The transaction of `conn` committed or rolled back."""
        with self._lock:
            self.open.pop(id(conn), None)

    def in_transaction(self) -> bool:
        """Whether the calling thread holds an open transaction."""
        me = threading.get_ident()
        with self._lock:
            return me in self.open.values()

    def network(self, call: str) -> None:
        """Record `call` if this thread holds an open transaction."""
        if self.in_transaction():
            self.violations.append(Violation(call, _our_frames()))

    def assert_clean(self) -> None:
        """Fail with the first few violations (Mailroom's frames of each stack) if any."""
        first = "\n\n".join(str(v) for v in self.violations[:_SHOWN])
        assert not self.violations, f"{len(self.violations)} network calls:\n\n{first}"


_SHOWN = 3


def _our_frames() -> str:
    """The calling stack without pytest's, pluggy's and this module's own frames."""
    frames = traceback.extract_stack()[:-3]
    ours = [f for f in frames if "/site-packages/" not in f.filename or "/ssl.py" in f.filename]
    return "".join(traceback.format_list(ours or frames))


def _wrap(guard: TxGuard, cls: type, name: str) -> Callable[..., Any]:
    original = getattr(cls, name)

    def wrapper(sock: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(sock, "family", None) != socket.AF_UNIX:
            guard.network(f"{cls.__name__}.{name}")
        return original(sock, *args, **kwargs)

    return wrapper


def _wrap_function(guard: TxGuard, name: str) -> Callable[..., Any]:
    original = getattr(socket, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        guard.network(f"socket.{name}")
        return original(*args, **kwargs)

    return wrapper


@contextmanager
def guarding(monkeypatch: pytest.MonkeyPatch) -> Iterator[TxGuard]:
    """Track transactions on every Engine and network calls on every socket while inside."""
    guard = TxGuard()
    listeners: list[tuple[str, Callable[..., None]]] = [
        ("begin", guard.began),
        ("commit", guard.ended),
        ("rollback", guard.ended),
    ]
    for name, fn in listeners:
        event.listen(Engine, name, fn)
    for name in _SOCKET_CALLS:
        monkeypatch.setattr(socket.socket, name, _wrap(guard, socket.socket, name))
    for name in _SSL_CALLS:
        monkeypatch.setattr(ssl.SSLSocket, name, _wrap(guard, ssl.SSLSocket, name))
    for name in ("getaddrinfo", "create_connection"):
        monkeypatch.setattr(socket, name, _wrap_function(guard, name))
    try:
        yield guard
    finally:
        for name, fn in listeners:
            event.remove(Engine, name, fn)

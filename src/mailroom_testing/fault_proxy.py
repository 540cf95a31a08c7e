"""A TCP proxy for fault tests: sits between Mailroom and the real Dovecot on 127.0.0.1.

It forwards bytes both ways and, when told, makes one fault happen for real:

- `cut_after(pattern, extra)`: once the server→client stream has carried `pattern`,
  forward `extra` more bytes and close both sockets (e.g. in the middle of a FETCH
  literal, after b"BODY[] {");
- `answer(command, line)`: the next client command containing `command` (e.g. b"UID FETCH")
  is not forwarded; the client gets `line` instead, with the command's tag put in for
  `{tag}` (a tagged `NO [THROTTLED]`), or an untagged `* BYE` followed by a close;
- `stall()`: stop forwarding server→client (a server that hangs mid-answer); with
  `stall_after(pattern)` once the server→client stream has carried `pattern`;
- `throttle(bytes_per_second)`: forward server→client bytes no faster than that (a slow
  link, so that a test can act while a fetch is still under way); `throttle(None)` ends it;
- `hide(capability)`: drop `capability` from every CAPABILITY list the server sends (the
  greeting's and LOGIN's response codes, and CAPABILITY answers; RFC 3501 §7.2.1), so the
  client sees a server without it (e.g. QRESYNC, to exercise the UID SEARCH fallback).

Faults are one-shot; hidden capabilities stay hidden. The proxy speaks no IMAP beyond
finding a command's tag (the first word of a client line, RFC 3501 §2.2.1) and a
CAPABILITY line, so it must sit on the plain-text port.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass


@dataclass
class _Fault:
    kind: str
    pattern: bytes
    extra: int = 0
    line: bytes = b""
    close: bool = False


class FaultProxy:
    """Listen on a free port of 127.0.0.1 and forward to (host, port)."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._stalled = threading.Event()
        self._closed = threading.Event()
        self.fired: list[str] = []
        self._conns: list[socket.socket] = []
        self._hidden: list[bytes] = []
        self._rate: float | None = None
        threading.Thread(target=self._accept, daemon=True).start()

    # -- faults ------------------------------------------------------------------------------

    def cut_after(self, pattern: bytes, extra: int = 0) -> None:
        """Once the server has sent `pattern`, forward `extra` more bytes, then close both sides."""
        with self._lock:
            self._faults.append(_Fault("cut", pattern, extra=extra))

    def answer(self, command: bytes, line: bytes, *, close: bool = False) -> None:
        """Answer the next client command containing `command` with `line` instead of the server."""
        with self._lock:
            self._faults.append(_Fault("answer", command, line=line, close=close))

    def stall_after(self, pattern: bytes) -> None:
        """Once the server has sent `pattern`, stop forwarding its bytes."""
        with self._lock:
            self._faults.append(_Fault("stall", pattern))

    def stall(self) -> None:
        """Stop forwarding server-to-client bytes now."""
        self._stalled.set()

    def hide(self, capability: bytes) -> None:
        """Remove `capability` from the server's CAPABILITY answers."""
        self._hidden.append(capability)

    def throttle(self, bytes_per_second: float | None) -> None:
        """Forward each connection's server bytes at most this fast (None: at full speed)."""
        self._rate = bytes_per_second

    def resume(self) -> None:
        """Forward server-to-client bytes again after a stall."""
        self._stalled.clear()

    def close(self) -> None:
        """Stop listening and close every proxied connection."""
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.close()

    # -- plumbing ------------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self._conns += [client, server]
            threading.Thread(target=self._upstream, args=(client, server), daemon=True).start()
            threading.Thread(target=self._downstream, args=(server, client), daemon=True).start()

    def _take(self, kind: str, data: bytes) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.kind == kind and fault.pattern in data:
                    self._faults.remove(fault)
                    self.fired.append(f"{kind}:{fault.pattern.decode(errors='replace')}")
                    return fault
        return None

    def _upstream(self, client: socket.socket, server: socket.socket) -> None:
        """client → server, line-aware enough to intercept one command."""
        buffer = b""
        try:
            while chunk := client.recv(65536):
                buffer += chunk
                while b"\r\n" in buffer:
                    line, buffer = buffer.split(b"\r\n", 1)
                    fault = self._take("answer", line)
                    if fault is None:
                        server.sendall(line + b"\r\n")
                        continue
                    tag = line.split(b" ", 1)[0]
                    client.sendall(fault.line.replace(b"{tag}", tag) + b"\r\n")
                    if fault.close:
                        raise OSError("closing after an injected answer")
        except OSError:
            pass
        finally:
            _close_both(client, server)

    def _without_hidden(self, chunk: bytes) -> bytes:
        if not self._hidden or b"CAPABILITY" not in chunk:
            return chunk
        lines = chunk.split(b"\r\n")
        for n, line in enumerate(lines):
            if b"CAPABILITY" in line:
                for capability in self._hidden:
                    line = line.replace(b" " + capability + b" ", b" ")
                    line = line.replace(b" " + capability + b"]", b"]")
                    if line.endswith(b" " + capability):
                        line = line[: -len(capability) - 1]
                lines[n] = line
        return b"\r\n".join(lines)

    def _downstream(self, server: socket.socket, client: socket.socket) -> None:
        """server → client, with the cut and stall faults and the hidden capabilities."""
        seen = b""
        cutting: _Fault | None = None
        try:
            while chunk := server.recv(65536):
                chunk = self._without_hidden(chunk)
                rate = self._rate
                if rate is not None:
                    time.sleep(len(chunk) / rate)
                while self._stalled.is_set() and not self._closed.is_set():
                    time.sleep(0.05)
                if self._take("stall", seen[-256:] + chunk) is not None:
                    self._stalled.set()
                    while self._stalled.is_set() and not self._closed.is_set():
                        time.sleep(0.05)
                if cutting is None:
                    window = seen[-256:] + chunk
                    cutting = self._take("cut", window)
                    if cutting is not None:
                        at = window.index(cutting.pattern) + len(cutting.pattern)
                        offset = at - len(seen[-256:])
                        client.sendall(chunk[: max(0, offset) + cutting.extra])
                        raise OSError("cut")
                    seen = window
                client.sendall(chunk)
        except OSError:
            pass
        finally:
            _close_both(client, server)


def _close_both(client: socket.socket, server: socket.socket) -> None:
    """End a relayed connection: either direction's end closes both sockets."""
    for sock in (client, server):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
            sock.close()

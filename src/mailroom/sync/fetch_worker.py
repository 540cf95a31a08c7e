"""Fetch, parse headers and stage blobs in worker processes while this one ingests.

A large fetch (an initial sync, a backfill) spends its CPU on two sides: reading and
parsing (the IMAP responses, the header block, SHA-256, writing the raw messages to the
blob store) and storing (inserts, matching). In one process they share one GIL, and the
database side pays for it at every SQLite step, which releases the GIL and must win it
back from whichever thread is busy parsing: measured in isolation, a busy second thread
made an `executemany` of 85,000 rows 280 times slower. So a big fetch is split: worker
processes (fresh interpreters, `python -c`, so no fork of a process holding threads and
database connections, and none of the CLI imported) each open their own connection to
the server and, for each batch the ingesting process asks of them, fetch it (BODY.PEEK[],
read-only like every fetch), parse each header block with the same `parse_headers` the
in-process path uses, and write the batch's messages into one pack file in a staging area
of the blob store (mail.packs.stage_pack). Back over a socket pair come only the UIDs,
flags, sizes, digests, offsets and parses. The ingesting process adopts the staged pack:
if it keeps any of its messages the pack is renamed into the store before the batch
commits, the bytes of the others released (mail.blobs); else it is deleted.

The protocol is request/response: batch i goes to worker i mod N, and the ingesting
process keeps at most `depth` batches requested ahead and takes the answers in batch
order, so memory stays bounded (parses of at most depth batches, each batch's bytes only
on disk) and the cursor logic does not change: each batch commits with its cursor, in
order, exactly as with the in-process read-ahead (sync/prefetch.py).

A message the server lists but did not send readably comes back as its UID and the
reason (`connectors.base.Unreadable`), never dropped: the ingesting process records it
(sync/quarantine.py) in the batch's transaction, as the in-process path does.

Errors: whatever a worker's fetch raises (a refused login, a cut connection, a BYE) is
sent back and re-raised in the ingesting process where the batch would have been, as the
same MailroomError, so health and backoff see what they would have seen. A worker that
dies is a NetworkError. A stage-timeout abort of the sync (the scheduler's watchdog) or a
stop request ends the workers too. If the ingesting process is killed, a worker's next
read or write on its socket fails and it exits; the next sync sweeps the staging area
the dead one left.

Used only when the source can be reopened in another process (`ImapSource.reopen`) and
the fetch has at least `Settings.parse_worker_min` messages: starting a worker costs a
fraction of a second.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import secrets
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType

from mailroom.config import make_private_dir
from mailroom.connectors.base import Fetched, RawMessage, StagedCopy, Unreadable
from mailroom.errors import MailroomError, NetworkError, ProtocolError
from mailroom.mail.blobs import STAGING, sweep_staging
from mailroom.mail.message import ParsedMessage
from mailroom.mail.packs import stage_pack
from mailroom.mail.parse import parse_headers
from mailroom.sync.source import SyncSource

log = logging.getLogger(__name__)
__all__ = ["FetchWorker", "Reopen"]

Reopen = Callable[[], SyncSource]
_POLL = 0.2  # seconds between checks for an abort while waiting on the worker
_STOP_GRACE = 5.0


class FetchWorker:
    """A worker process fetching one folder's batches; use as a context manager."""

    def __init__(
        self,
        reopen: Reopen,
        folder: str,
        blob_root: Path,
        *,
        depth: int = 2,
        processes: int = 1,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> None:
        self.folder = folder
        self.area = blob_root / STAGING / f"{os.getpid()}-{secrets.token_hex(4)}"
        self._blob_root = blob_root
        self._reopen = reopen
        self._processes = max(1, processes)
        self._depth = max(self._processes, depth)
        self._cancelled = cancelled
        self._workers: list[tuple[Connection, subprocess.Popen[bytes]]] = []

    def __enter__(self) -> FetchWorker:
        sweep_staging(self._blob_root, keep=self.area)
        make_private_dir(self.area)
        try:
            for _ in range(self._processes):
                self._workers.append(self._start())
        except BaseException:
            self.close()
            raise
        return self

    def _start(self) -> tuple[Connection, subprocess.Popen[bytes]]:
        # A fresh interpreter running only this module: not multiprocessing's spawn, which
        # would also import the parent's main script (the whole CLI, some 55 MB more).
        mine, theirs = socket.socketpair()
        with theirs:
            process = subprocess.Popen(
                [sys.executable, "-c", _ENTRY, str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
            )
        conn = Connection(mine.detach())
        conn.send((self._reopen, self.folder, str(self.area)))
        return conn, process

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def batches(
        self, batches: Sequence[list[int]]
    ) -> Iterator[tuple[list[int], Fetched, list[ParsedMessage]]]:
        """(batch, its messages with staged bytes and the unreadable ones, their header
        parses), in order."""
        asked = 0
        for index, batch in enumerate(batches):
            while asked < len(batches) and asked <= index + self._depth - 1:
                self._send((asked, batches[asked]))
                asked += 1
            got, parses = self._receive(index)
            yield batch, got, parses

    def close(self) -> None:
        """Stop the workers (batches in hand are dropped) and delete the staging area."""
        workers, self._workers = self._workers, []
        for conn, _ in workers:
            with contextlib.suppress(OSError):
                conn.send(None)
        for conn, process in workers:
            try:
                process.wait(_STOP_GRACE)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            conn.close()
        shutil.rmtree(self.area, ignore_errors=True)

    def _send(self, request: tuple[int, list[int]]) -> None:
        conn, process = self._workers[request[0] % len(self._workers)]
        try:
            conn.send(request)
        except OSError as exc:
            raise _died(self.folder, process) from exc

    def _receive(self, index: int) -> tuple[Fetched, list[ParsedMessage]]:
        conn, process = self._workers[index % len(self._workers)]
        while not conn.poll(_POLL):
            if self._cancelled():
                raise NetworkError(f"The fetch of {self.folder} was cut off (sync aborted)")
            if process.poll() is not None and not conn.poll(0):
                raise _died(self.folder, process)
        try:
            kind, number, payload = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError) as exc:
            raise _died(self.folder, process) from exc
        if kind == "error":
            raise payload
        if number != index:  # pragma: no cover - the protocol is strictly in order
            raise ProtocolError(f"fetch worker answered batch {number}, expected {index}")
        name, found, unreadable = payload
        path = os.path.join(self.area, name)
        raws, parses = [], []
        for uid, uidvalidity, flags, internaldate, size, digest, offset, parsed in found:
            raws.append(
                RawMessage(
                    folder=self.folder,
                    uidvalidity=uidvalidity,
                    uid=uid,
                    data=b"",
                    flags=flags,
                    internaldate=internaldate,
                    staged=StagedCopy(path=path, sha256=digest, size=size, offset=offset),
                )
            )
            parses.append(parsed)
        failed = [Unreadable(uid, reason) for uid, reason in unreadable]
        return Fetched(messages=raws, unreadable=failed), parses


def _died(folder: str, process: subprocess.Popen[bytes]) -> NetworkError:
    return NetworkError(
        f"The fetch worker for {folder} stopped (exit code {process.poll()})",
        hint="The next sync resumes where this one stopped.",
    )


_ENTRY = "from mailroom.sync.fetch_worker import main; main()"


def main() -> None:
    """The worker process's entry: its connection's fd is the one argument."""
    logging.disable(logging.CRITICAL)  # errors go back to the ingesting process, which logs
    conn = Connection(int(sys.argv[1]))
    try:
        reopen, folder, area = conn.recv()
    except (EOFError, OSError):
        return
    _serve(conn, reopen, folder, area)


def _serve(conn: Connection, reopen: Reopen, folder: str, area: str) -> None:
    """Answer batch requests in order until told to stop."""
    source: SyncSource | None = None
    try:
        source = reopen()
        while True:
            request = conn.recv()
            if request is None:
                return
            number, uids = request
            got = source.fetch_uids(folder, uids)
            raws = got.messages
            name, staged = stage_pack(Path(area), [r.data for r in raws])
            payload = [
                (
                    r.uid,
                    r.uidvalidity,
                    r.flags,
                    r.internaldate,
                    size,
                    digest,
                    offset,
                    parse_headers(r.data),
                )
                for r, (digest, offset, size) in zip(raws, staged, strict=True)
            ]
            del raws
            unreadable = [(u.uid, u.reason) for u in got.unreadable]
            del got
            answer = ("ok", number, (name, payload, unreadable))
            conn.send_bytes(pickle.dumps(answer, pickle.HIGHEST_PROTOCOL))
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        return  # the ingesting process is gone or stopping
    except BaseException as exc:  # handed over, re-raised where the batch was awaited
        try:
            conn.send_bytes(pickle.dumps(("error", -1, _portable(exc))))
        except OSError:
            return
    finally:
        if source is not None:
            try:
                source.close()
            except Exception:
                log.debug("fetch worker: closing the connection failed", exc_info=True)


def _portable(exc: BaseException) -> BaseException:
    """`exc` if it survives pickling (every MailroomError does), else a ProtocolError."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        if isinstance(exc, MailroomError):
            return ProtocolError(exc.message, hint=exc.hint)
        return ProtocolError(f"fetch worker: {type(exc).__name__}: {exc}")

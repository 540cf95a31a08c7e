"""Fetch the next batches while the current one is ingested: a bounded read-ahead thread.

The sync's two halves use different resources: fetching waits on the server's socket,
ingesting burns CPU (header parse, matching) and waits on the database and the disk. One
thread does both in turn; here a fetcher thread reads batches ahead into a queue of at
most `depth` batches while the caller ingests and commits, so the two overlap.

Invariants:
- memory stays bounded: at most `depth` batches queued, one being fetched and the one the
  caller holds (each batch is bounded by count and bytes, connectors.base.size_batches);
- the connection is used by one thread at a time: only the fetcher while it runs, and the
  caller again only after `close` (always called, by the `with` block) has joined it;
- the cursor is untouched here: the caller commits a batch and its cursor together, in
  order, so a kill still re-fetches at most the batches not yet committed;
- an error in the fetcher (a cut connection, a BYE, an abort from the stage watchdog) is
  re-raised in the caller, as the very exception object, where the batch would have been:
  the engine's error handling is the same as when it fetched itself;
- a stop (the caller leaves the loop) cancels the fetcher after its current command.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Generic, TypeVar

T = TypeVar("T")
_DONE = object()
_POLL = 0.1


class Prefetcher(Generic[T]):
    """Runs `fetch(batch)` for each batch in order on a thread, `depth` results ahead."""

    def __init__(
        self, fetch: Callable[[list[int]], T], batches: Sequence[list[int]], *, depth: int = 2
    ) -> None:
        if depth < 1:
            raise ValueError("depth must be >= 1")
        self._fetch = fetch
        self._batches = list(batches)
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mailroom-prefetch", daemon=True)

    def __enter__(self) -> Prefetcher[T]:
        if self._batches:
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[tuple[list[int], T]]:
        """(batch, what fetch returned for it), in the batches' order."""
        for batch in self._batches:
            item = self._queue.get()
            if item is _DONE:  # pragma: no cover - the fetcher was cancelled under us
                return
            if isinstance(item, BaseException):
                raise item
            yield batch, item  # type: ignore[misc]  # the fetcher only queues T here

    def close(self) -> None:
        """Stop the fetcher after its current command and wait for it (idempotent)."""
        self._cancel.set()
        if not self._thread.is_alive():
            return
        while self._thread.is_alive():
            try:  # make room, so a fetcher blocked on a full queue sees the cancel
                self._queue.get_nowait()
            except queue.Empty:
                self._thread.join(_POLL)

    def _run(self) -> None:
        for batch in self._batches:
            if self._cancel.is_set():
                break
            try:
                item: object = self._fetch(batch)
            except BaseException as exc:  # handed to the caller, who decides
                self._put(exc)
                return
            if not self._put(item):
                return
        self._put(_DONE)

    def _put(self, item: object) -> bool:
        while not self._cancel.is_set():
            try:
                self._queue.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

"""A content-addressed blob store on disk for raw messages and attachment bytes.

A blob is named by its SHA-256 and written once (temp file + rename, so a reader never sees
half a blob). Identical attachments in a thousand messages are stored once. A blob written
by a batch whose transaction then failed is an orphan, never a corruption: the database
only ever names blobs that were complete before it committed.

`put` is on the sync hot path (one raw message each): it remembers the directories it
made, writes to a temp name unique to this process and thread (no `mkstemp` retry loop),
and skips the write when the blob exists. `batch()` goes further for a sync batch: its
`put` returns the digest at once and writes on a small pool of threads (the system calls
release the GIL, so the writes overlap the batch's parsing and inserts), and leaving the
`with` block waits for every write and re-raises the first failure. A batch's rows commit
only after that, so the invariant above holds.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

WRITERS = 2
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _writers() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="mailroom-blobs")
        return _pool


class BlobStore:
    """Stores bytes under `root/ab/cd/<sha256>`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._dirs: set[str] = set()
        self._counter = itertools.count()

    def path_for(self, digest: str) -> Path:
        return self.root / digest[:2] / digest[2:4] / digest

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        self.write(digest, data)
        return digest

    def write(self, digest: str, data: bytes) -> None:
        """Store `data` under `digest` (its SHA-256) unless that blob exists already."""
        folder = os.path.join(self.root, digest[:2], digest[2:4])
        path = os.path.join(folder, digest)
        if os.path.exists(path):
            return
        if folder not in self._dirs:
            os.makedirs(folder, exist_ok=True)
            self._dirs.add(folder)
        tmp = os.path.join(
            folder, f".tmp-{os.getpid()}-{threading.get_ident()}-{next(self._counter)}"
        )
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, digest: str) -> bytes:
        return self.path_for(digest).read_bytes()

    def exists(self, digest: str) -> bool:
        return self.path_for(digest).exists()

    def batch(self) -> BlobBatch:
        """A store whose writes run in the background until the `with` block ends."""
        return BlobBatch(self)


class BlobBatch(BlobStore):
    """The blobs of one batch: `put` hands the write to the pool; exit waits for them all.

    Use only as a context manager, and commit the rows naming its blobs only after the
    block has ended without an error (then every blob is complete on disk).
    """

    def __init__(self, store: BlobStore) -> None:
        super().__init__(store.root)
        self._store = store
        self._pending: dict[str, Future[None]] = {}
        self._hashes: Future[dict[int, str]] | None = None

    def prehash(self, datas: Sequence[bytes]) -> None:
        """Start hashing these (hashlib releases the GIL); `put` then only looks up.

        The caller keeps `datas` alive until it has put them (they are keyed by identity).
        """
        self._hashes = _writers().submit(
            lambda: {id(data): hashlib.sha256(data).hexdigest() for data in datas}
        )

    def put(self, data: bytes) -> str:
        known = self._hashes.result() if self._hashes is not None else {}
        digest = known.get(id(data)) or hashlib.sha256(data).hexdigest()
        if digest not in self._pending:
            self._pending[digest] = _writers().submit(self._store.write, digest, data)
        return digest

    def get(self, digest: str) -> bytes:
        self.wait(digest)
        return self._store.get(digest)

    def exists(self, digest: str) -> bool:
        self.wait(digest)
        return self._store.exists(digest)

    def wait(self, digest: str | None = None) -> None:
        """Block until this blob (or every blob) is written; re-raise a failed write."""
        futures = list(self._pending.values()) if digest is None else [self._pending.get(digest)]
        failure: BaseException | None = None
        for future in futures:
            if future is not None and (error := future.exception()) is not None:
                failure = failure or error
        if failure is not None:
            raise failure

    def __enter__(self) -> BlobBatch:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:  # the batch failed: let its writes end, then report the cause
            for future in self._pending.values():
                future.exception()
            return
        self.wait()

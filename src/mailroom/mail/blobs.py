"""A content-addressed blob store on disk for raw messages and attachment bytes.

A blob is named by its SHA-256 (`root/ab/<sha256>`) and written once (temp file +
rename, so a reader never sees half a blob). Identical attachments in a thousand messages
are stored once. A blob written by a batch whose transaction then failed is an orphan,
never a corruption: the database only ever names blobs that were complete before it
committed.

`put` is on the sync hot path (one raw message each): it remembers the directories it
made, writes to a temp name unique to this process and thread (no `mkstemp` retry loop),
and skips the write when the blob exists. `batch()` goes further for a sync batch: its
`put` returns the digest at once and writes on a small pool of threads (the system calls
release the GIL, so the writes overlap the batch's parsing and inserts), and leaving the
`with` block waits for every write and re-raises the first failure. A batch's rows commit
only after that, so the invariant above holds.

Staging (the fetch worker, sync/fetch_worker.py): another process fetches, hashes and
writes a batch's raw messages into one pack file under `root/.staging/AREA/`
(mail.packs.stage_pack) before the ingesting process decides which to keep. The batch
`adopt`s them: `keep` of a staged message costs no hashing or writing and gives its
`raw_location`, and leaving the block moves each pack keeping anything into
`root/packs/` with one rename, the bytes of the messages it did not keep released first,
so a skipped message (a confidential subject, a blocked sender) leaves no raw copy
behind. An area left by a killed process is swept by the next worker (`sweep_staging`).
Read a message's raw bytes with `read_raw(raw_sha256, raw_location)`: packed or loose.

Every folder is made 0700 and every file 0600, whatever the umask (config.make_private_dir,
config.open_private): the store holds whole mailboxes.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

from mailroom.config import make_private_dir, open_private
from mailroom.digits import is_number
from mailroom.mail.packs import (
    PACKS,
    is_packed_here,
    location,
    read_packed,
    read_range,
    release_ranges,
)

WRITERS = 2
STAGING = ".staging"
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _writers() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="mailroom-blobs")
        return _pool


def sweep_staging(root: Path, *, keep: Path | None = None) -> None:
    """Delete staging areas whose process is gone (areas are named `<pid>-<token>`)."""
    staging = root / STAGING
    if not staging.is_dir():
        return
    for area in staging.iterdir():
        if area == keep:
            continue
        pid = area.name.partition("-")[0]
        if is_number(pid) and _alive(int(pid)):
            continue
        shutil.rmtree(area, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - another user's process: leave its area
        return True
    return True


class BlobStore:
    """Stores bytes under `root/ab/<sha256>`.

    One level of 256 folders: a second level (`ab/cd/`, what earlier versions wrote, still
    read) cost a `mkdir` for nearly every message of an initial sync (65,536 folders), as
    much as writing the message; ext4's hashed directories keep 256 large folders fast."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._dirs: set[str] = set()
        self._counter = itertools.count()

    def path_for(self, digest: str) -> Path:
        return self.root / digest[:2] / digest

    def _legacy_path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest[2:4] / digest

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        self.write(digest, data)
        return digest

    def keep(self, digest: str) -> str | None:
        """Batches only (`BlobBatch.keep`): a plain store has nothing staged."""
        return None

    def write(self, digest: str, data: bytes) -> None:
        """Store `data` under `digest` (its SHA-256) unless that blob exists already."""
        folder = self.ensure_folder(digest)
        path = os.path.join(folder, digest)
        if os.path.exists(path) or self._legacy_path(digest).exists():
            return
        tmp = os.path.join(
            folder, f".tmp-{os.getpid()}-{threading.get_ident()}-{next(self._counter)}"
        )
        try:
            with open_private(tmp, exclusive=True) as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def ensure_folder(self, digest: str) -> str:
        """The blob's directory, made on first use."""
        return self._folder(digest[:2])

    def _folder(self, name: str) -> str:
        """`root/name`, made on first use."""
        folder = os.path.join(self.root, name)
        if folder not in self._dirs:
            make_private_dir(folder)
            self._dirs.add(folder)
        return folder

    def promote_pack(self, staged: str) -> None:
        """Move a staged pack (mail.packs) into `root/packs/`, under the same name."""
        os.replace(staged, os.path.join(self._folder(PACKS), os.path.basename(staged)))

    def read_raw(self, digest: str, where: str | None) -> bytes:
        """A message's raw bytes: from its pack when its row has a `raw_location`, else the
        loose blob `digest`."""
        return read_packed(self.root, where, digest) if where else self.get(digest)

    def has_raw(self, digest: str, where: str | None) -> bool:
        """Whether a message's raw bytes are in the store (see `read_raw`)."""
        return is_packed_here(self.root, where) if where else self.exists(digest)

    def stored_raw(self, digest: str | None, where: str | None) -> bytes | None:
        """A stored message row's raw bytes (its `raw_sha256`, `raw_location`), or None
        when it has none or they are gone."""
        if not digest or not self.has_raw(digest, where):
            return None
        return self.read_raw(digest, where)

    def get(self, digest: str) -> bytes:
        try:
            return self.path_for(digest).read_bytes()
        except FileNotFoundError:
            return self._legacy_path(digest).read_bytes()

    def exists(self, digest: str) -> bool:
        return self.path_for(digest).exists() or self._legacy_path(digest).exists()

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
        # digest → (staged pack, offset, size), until its pack is promoted or dropped
        self._staged: dict[str, tuple[str, int, int]] = {}
        self._keep: set[str] = set()

    def prehash(self, datas: Sequence[bytes]) -> None:
        """Start hashing these (hashlib releases the GIL); `put` then only looks up.

        The caller keeps `datas` alive until it has put them (they are keyed by identity).
        """
        self._hashes = _writers().submit(
            lambda: {id(data): hashlib.sha256(data).hexdigest() for data in datas}
        )

    def adopt(self, staged: Iterable[tuple[str, str, int, int]]) -> None:
        """Take over messages the fetch worker staged, as (sha256, pack path, offset, size)
        (see the module doc): each is kept in the store if `keep` asks for it, else
        released, when the block ends."""
        self._staged.update((digest, (path, offset, size)) for digest, path, offset, size in staged)

    def keep(self, digest: str) -> str | None:
        """Store the adopted staged message `digest`: its `raw_location`, or None if none
        was adopted."""
        found = self._staged.get(digest)
        if found is None:
            return None
        self._keep.add(digest)
        path, offset, size = found
        return location(os.path.basename(path), offset, size)

    def put(self, data: bytes) -> str:
        known = self._hashes.result() if self._hashes is not None else {}
        digest = known.get(id(data)) or hashlib.sha256(data).hexdigest()
        if digest not in self._pending:
            self._pending[digest] = _writers().submit(self._store.write, digest, data)
        return digest

    def get(self, digest: str) -> bytes:
        self.wait(digest)
        if digest in self._staged and not self._store.exists(digest):
            return read_range(*self._staged[digest])
        return self._store.get(digest)

    def exists(self, digest: str) -> bool:
        self.wait(digest)
        return digest in self._keep or self._store.exists(digest)

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
            self._drop_staged(keep=set())
            return
        self.wait()
        self._drop_staged(keep=self._keep)

    def _drop_staged(self, *, keep: set[str]) -> None:
        """Promote the staged packs keeping anything into the store, the bytes of what they
        do not keep released; delete the others."""
        staged, self._staged = self._staged, {}
        packs: dict[str, tuple[set[tuple[int, int]], set[tuple[int, int]]]] = {}
        for digest, (path, offset, size) in staged.items():
            kept, dropped = packs.setdefault(path, (set(), set()))
            (kept if digest in keep else dropped).add((offset, size))
        for path, (kept, dropped) in packs.items():
            if not kept:
                Path(path).unlink(missing_ok=True)
                continue
            released = dropped - kept
            if released:
                release_ranges(path, sorted(released))
            self._store.promote_pack(path)

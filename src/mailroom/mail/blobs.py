"""A content-addressed blob store on disk for raw messages and attachment bytes.

A blob is named by its SHA-256 and written once (temp file + rename, so a reader never sees
half a blob). Identical attachments in a thousand messages are stored once. A blob written
by a batch whose transaction then failed is an orphan, never a corruption: the database
only ever names blobs that were complete before it committed.

`put` is on the sync hot path (one raw message each): it remembers the directories it
made, writes to a temp name unique to this process and thread (no `mkstemp` retry loop),
and skips the write when the blob exists.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import threading
from pathlib import Path


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
        folder = os.path.join(self.root, digest[:2], digest[2:4])
        path = os.path.join(folder, digest)
        if os.path.exists(path):
            return digest
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
        return digest

    def get(self, digest: str) -> bytes:
        return self.path_for(digest).read_bytes()

    def exists(self, digest: str) -> bool:
        return self.path_for(digest).exists()

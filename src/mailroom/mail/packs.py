"""Pack files: the raw messages of one fetch batch in one file, not a file each.

The fetch workers (sync/fetch_worker.py) write a batch's messages end to end into one
staged pack, `root/.staging/AREA/<name>.pack`, and hand back each message's digest and
offset. The ingesting process keeps the ones it stores: when the batch ends, the pack is
moved into `root/packs/<name>.pack` with one rename, the byte ranges of the messages it
did not keep (skipped, or stored before) are released first (a hole punched, or zeros
written where the file system cannot punch), and a pack keeping nothing is deleted. A
stored message's row names its place as `raw_location` = `<name>:<offset>:<size>` beside
its `raw_sha256`; a message without one is a loose blob (`root/ab/<sha256>`, mail.blobs).

Why (bench/README.md, decision 0038): creating a file cost 200-1,100 µs of system CPU
per message on this kind of machine against 20-40 µs to append the same bytes to one
file, and the whole initial sync of 100,000 messages spent more CPU creating and renaming
its 100,000 files than parsing them. Dovecot's multi-dbox stores mail the same way.

A pack is never rewritten in place: its name is random (128 bits), written once by one
worker, complete before the ingesting process learns it, so a half-written one (the worker
killed) is only ever swept with its staging area. A message is read back by `read_packed`,
which checks the bytes against the row's SHA-256, so a damaged or misplaced pack is an
error, never another message's bytes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import hashlib
import os
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from mailroom.config import make_private_dir, write_private

__all__ = [
    "PACKS",
    "PackDamaged",
    "Staged",
    "is_packed_here",
    "location",
    "pack_path",
    "read_packed",
    "read_range",
    "release_ranges",
    "stage_pack",
]

PACKS = "packs"
_NAME = re.compile(r"[0-9a-f]{32}\.pack")
_LOCATION = re.compile(r"(?P<name>[0-9a-f]{32}\.pack):(?P<offset>\d{1,15}):(?P<size>\d{1,12})")
_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02
_ZEROS = bytes(1 << 16)


class PackDamaged(OSError):
    """A packed message is missing, short or not the bytes its row's SHA-256 names."""


Staged = tuple[str, int, int]  # (sha256, offset, size) of one message in a staged pack


def stage_pack(area: Path, datas: Sequence[bytes]) -> tuple[str, list[Staged]]:
    """Write `datas` end to end as one new pack in `area`: its file name, and each
    message's (sha256, offset, size) in order. A message twice in the batch is written
    once (both entries name the same bytes)."""
    make_private_dir(area)
    name = f"{secrets.token_hex(16)}.pack"
    entries: list[Staged] = []
    first: dict[str, Staged] = {}
    parts: list[bytes] = []
    offset = 0
    for data in datas:
        digest = hashlib.sha256(data).hexdigest()
        entry = first.get(digest)
        if entry is None:
            entry = first[digest] = (digest, offset, len(data))
            parts.append(data)
            offset += len(data)
        entries.append(entry)
    write_private(os.path.join(area, name), parts)
    return name, entries


def location(name: str, offset: int, size: int) -> str:
    """What a message row stores as `raw_location`: its pack, offset and size."""
    return f"{name}:{offset}:{size}"


def pack_path(root: Path, name: str) -> Path:
    """Where the store keeps pack `name` (a name this module made; anything else refused)."""
    if not _NAME.fullmatch(name):
        raise PackDamaged(f"not a pack name: {name[:80]!r}")
    return root / PACKS / name


def read_packed(root: Path, where: str, sha256: str) -> bytes:
    """The message stored at `where` (a `raw_location`), checked against `sha256`."""
    match = _LOCATION.fullmatch(where)
    if match is None:
        raise PackDamaged(f"not a pack location: {where[:80]!r}")
    try:
        data = read_range(pack_path(root, match["name"]), int(match["offset"]), int(match["size"]))
    except FileNotFoundError as exc:
        raise PackDamaged(f"the pack {match['name']} is missing") from exc
    if len(data) != int(match["size"]) or hashlib.sha256(data).hexdigest() != sha256:
        raise PackDamaged(f"the bytes at {where} are not the message {sha256}")
    return data


def read_range(path: str | os.PathLike[str], offset: int, size: int) -> bytes:
    """`size` bytes of the file at `path` from `offset` (fewer at its end)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, size, offset)
    finally:
        os.close(fd)


def is_packed_here(root: Path, where: str) -> bool:
    """Whether the pack a `raw_location` names is in the store."""
    match = _LOCATION.fullmatch(where)
    return match is not None and pack_path(root, match["name"]).is_file()


def release_ranges(path: str, ranges: Iterable[tuple[int, int]]) -> None:
    """Drop the bytes of these (offset, size) ranges of the file at `path`: a hole punched
    (the disk space freed), or zeros written where the file system cannot punch one.
    Offsets of everything else are unchanged."""
    fd = os.open(path, os.O_WRONLY)
    try:
        for offset, size in ranges:
            if size and not _punch(fd, offset, size, path):
                _zero(fd, offset, size)
    finally:
        os.close(fd)


def _zero(fd: int, offset: int, size: int) -> None:
    end = offset + size
    while offset < end:
        offset += os.pwrite(fd, _ZEROS[: min(len(_ZEROS), end - offset)], offset)


def _punch(fd: int, offset: int, size: int, path: str) -> bool:
    fallocate = _fallocate()
    if fallocate is None:
        return False
    flags = _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE
    if fallocate(fd, flags, offset, size) == 0:
        return True
    if ctypes.get_errno() in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
        return False
    raise OSError(ctypes.get_errno(), "fallocate(PUNCH_HOLE) failed", path)


_LIBC: list[Callable[[int, int, int, int], int] | None] = []


def _fallocate() -> Callable[[int, int, int, int], int] | None:
    """libc's fallocate(2) (Linux), which the os module does not offer with flags."""
    if not _LIBC:
        name = ctypes.util.find_library("c")
        function = getattr(ctypes.CDLL(name, use_errno=True), "fallocate", None) if name else None
        if function is not None:
            function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
            function.restype = ctypes.c_int
        _LIBC.append(function)
    return _LIBC[0]

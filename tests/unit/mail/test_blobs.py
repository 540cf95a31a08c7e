"""The blob store: its layout (and the older one it still reads), and staged blobs that a
batch keeps or drops (mail/blobs.py)."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from mailroom.mail.blobs import STAGING, BlobStore, stage_blobs, sweep_staging


def test_blobs_live_one_folder_deep_and_the_older_two_level_layout_is_still_read(
    tmp_path: Path,
) -> None:
    store = BlobStore(tmp_path)
    digest = store.put(b"new")
    assert store.path_for(digest) == tmp_path / digest[:2] / digest
    assert store.get(digest) == b"new"

    old = b"written by an earlier version"
    old_digest = hashlib.sha256(old).hexdigest()
    legacy = tmp_path / old_digest[:2] / old_digest[2:4] / old_digest
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(old)
    assert store.exists(old_digest) and store.get(old_digest) == old
    assert store.put(old) == old_digest
    assert not store.path_for(old_digest).exists(), "an old blob is not written twice"


def staged(tmp_path: Path, *datas: bytes) -> tuple[BlobStore, list[tuple[str, str]]]:
    store = BlobStore(tmp_path / "blobs")
    area = store.root / STAGING / f"{os.getpid()}-test"
    digests = stage_blobs(area, "0-", list(datas), store)
    return store, [(d, str(area / f"0-{d}")) for d in digests]


def test_a_batch_moves_the_staged_blobs_it_keeps_into_place_and_deletes_the_rest(
    tmp_path: Path,
) -> None:
    store, files = staged(tmp_path, b"kept", b"skipped")
    (kept, kept_path), (dropped, dropped_path) = files
    with store.batch() as batch:
        batch.adopt(files)
        assert batch.keep(kept) and not batch.keep("f" * 64)
    assert store.get(kept) == b"kept"
    assert not store.exists(dropped)
    assert not Path(kept_path).exists() and not Path(dropped_path).exists()


def test_a_failed_batch_deletes_every_staged_blob_and_stores_none(tmp_path: Path) -> None:
    store, files = staged(tmp_path, b"one", b"two")
    with pytest.raises(RuntimeError), store.batch() as batch:
        batch.adopt(files)
        batch.keep(files[0][0])
        raise RuntimeError("the batch failed")
    assert not any(store.exists(digest) for digest, _ in files)
    assert not any(Path(path).exists() for _, path in files)


def test_staging_areas_of_dead_processes_are_swept_and_live_ones_kept(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    gone = subprocess.Popen(["true"])
    gone.wait()
    areas = {
        "live": tmp_path / STAGING / f"{os.getpid()}-a",
        "dead": tmp_path / STAGING / f"{gone.pid}-b",
    }
    for area in areas.values():
        stage_blobs(area, "0-", [b"x"], store)
    sweep_staging(store.root)
    assert areas["live"].exists() and not areas["dead"].exists()


def test_staging_writes_each_message_whole_once_and_private(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    area = store.root / STAGING / f"{os.getpid()}-test"
    datas = [b"same", b"other" * 100_000, b"same"]
    digests = stage_blobs(area, "7-", datas, store)
    assert digests == [hashlib.sha256(d).hexdigest() for d in datas]
    files = sorted(area.iterdir())
    assert sorted(f.name for f in files) == sorted(f"7-{d}" for d in set(digests))
    for digest, data in zip(digests, datas, strict=True):
        path = area / f"7-{digest}"
        assert path.read_bytes() == data
        assert path.stat().st_mode & 0o777 == 0o600
    assert all((store.root / d[:2]).is_dir() for d in digests), "the store folders are made"

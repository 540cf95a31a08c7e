"""The blob store: its layout (and the older one it still reads), and the staged packs
whose messages a batch keeps or drops (mail/blobs.py, mail/packs.py)."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from mailroom.mail.blobs import STAGING, BlobStore, sweep_staging
from mailroom.mail.packs import PACKS, stage_pack


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


def staged(tmp_path: Path, *datas: bytes) -> tuple[BlobStore, list[tuple[str, str, int, int]]]:
    store = BlobStore(tmp_path / "blobs")
    area = store.root / STAGING / f"{os.getpid()}-test"
    name, entries = stage_pack(area, list(datas))
    return store, [(d, str(area / name), offset, size) for d, offset, size in entries]


def test_a_batch_keeps_the_staged_messages_it_stores_in_a_pack_and_releases_the_rest(
    tmp_path: Path,
) -> None:
    store, entries = staged(tmp_path, b"kept " * 1000, b"skipped " * 1000)
    (kept, pack, _, _), (dropped, _, offset, size) = entries
    with store.batch() as batch:
        batch.adopt(entries)
        where = batch.keep(kept)
        assert where is not None and batch.keep("f" * 64) is None
    assert store.read_raw(kept, where) == b"kept " * 1000
    assert store.stored_raw(kept, where) == b"kept " * 1000
    assert not Path(pack).exists(), "the pack moved into the store"
    stored = store.root / PACKS / Path(pack).name
    assert stored.read_bytes()[offset : offset + size] == bytes(size), "the skipped bytes"
    assert stored.stat().st_mode & 0o777 == 0o600
    assert not store.exists(dropped)


def test_a_pack_keeping_nothing_is_deleted_not_stored(tmp_path: Path) -> None:
    store, entries = staged(tmp_path, b"one", b"two")
    with store.batch() as batch:
        batch.adopt(entries)
    assert not Path(entries[0][1]).exists()
    assert not (store.root / PACKS).exists() or not any((store.root / PACKS).iterdir())


def test_a_failed_batch_deletes_every_staged_pack_and_stores_none(tmp_path: Path) -> None:
    store, entries = staged(tmp_path, b"one", b"two")
    with pytest.raises(RuntimeError), store.batch() as batch:
        batch.adopt(entries)
        batch.keep(entries[0][0])
        raise RuntimeError("the batch failed")
    assert not Path(entries[0][1]).exists()
    assert not (store.root / PACKS).exists() or not any((store.root / PACKS).iterdir())


def test_staging_areas_of_dead_processes_are_swept_and_live_ones_kept(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    gone = subprocess.Popen(["true"])
    gone.wait()
    areas = {
        "live": tmp_path / STAGING / f"{os.getpid()}-a",
        "dead": tmp_path / STAGING / f"{gone.pid}-b",
    }
    for area in areas.values():
        stage_pack(area, [b"x"])
    sweep_staging(store.root)
    assert areas["live"].exists() and not areas["dead"].exists()


def test_staging_writes_a_batch_as_one_private_pack_each_message_once(tmp_path: Path) -> None:
    area = tmp_path / STAGING / f"{os.getpid()}-test"
    datas = [b"same", b"other" * 100_000, b"same"]
    name, entries = stage_pack(area, datas)
    assert [digest for digest, _, _ in entries] == [hashlib.sha256(d).hexdigest() for d in datas]
    assert entries[0] == entries[2], "a message twice in the batch is written once"
    assert [f.name for f in area.iterdir()] == [name]
    pack = (area / name).read_bytes()
    assert len(pack) == 4 + 500_000
    for (_, offset, size), data in zip(entries, datas, strict=True):
        assert pack[offset : offset + size] == data
    assert (area / name).stat().st_mode & 0o777 == 0o600

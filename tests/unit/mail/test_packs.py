"""Pack files (mail/packs.py): what a batch keeps reads back exactly, what it drops is gone,
and a location that does not name the right bytes is an error, never other bytes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailroom.mail.blobs import STAGING, BlobStore
from mailroom.mail.packs import PACKS, PackDamaged, location, read_packed, stage_pack

messages = st.lists(st.binary(min_size=0, max_size=9000), min_size=1, max_size=12)


@given(datas=messages, keep=st.lists(st.booleans(), min_size=12, max_size=12))
def test_kept_messages_read_back_exactly_and_dropped_ones_leave_no_bytes(
    tmp_path_factory: pytest.TempPathFactory, datas: list[bytes], keep: list[bool]
) -> None:
    store = BlobStore(tmp_path_factory.mktemp("blobs"))
    area = store.root / STAGING / f"{os.getpid()}-test"
    name, entries = stage_pack(area, datas)
    kept_digests = {d for (d, _, _), k in zip(entries, keep, strict=False) if k}
    with store.batch() as batch:
        batch.adopt((d, str(area / name), offset, size) for d, offset, size in entries)
        places = {d: batch.keep(d) for d in kept_digests}
    for (digest, offset, size), data in zip(entries, datas, strict=True):
        if digest in kept_digests:
            where = places[digest]
            assert where == location(name, offset, size)
            assert store.read_raw(digest, where) == data
    pack = store.root / PACKS / name
    if not kept_digests:
        assert not pack.exists()
        return
    content = pack.read_bytes()
    for digest, offset, size in entries:
        if digest not in kept_digests:
            assert content[offset : offset + size] == bytes(size)


def test_a_location_naming_other_bytes_or_no_pack_is_an_error(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    area = tmp_path / STAGING / "1-test"
    name, [(one, offset, size), (two, _, _)] = stage_pack(area, [b"first", b"second"])
    (tmp_path / PACKS).mkdir()
    os.replace(area / name, tmp_path / PACKS / name)
    assert read_packed(tmp_path, location(name, offset, size), one) == b"first"
    with pytest.raises(PackDamaged, match="not the message"):
        read_packed(tmp_path, location(name, offset, size), two)
    with pytest.raises(PackDamaged, match="not the message"):
        read_packed(tmp_path, location(name, offset + 1000, size), one)
    with pytest.raises(PackDamaged, match="not a pack location"):
        read_packed(tmp_path, f"../../etc/passwd:0:{size}", one)
    with pytest.raises(PackDamaged, match="missing"):
        read_packed(tmp_path, location("0" * 32 + ".pack", 0, 5), one)
    assert not store.has_raw(one, location("0" * 32 + ".pack", 0, 5))
    assert store.stored_raw(one, "nonsense") is None

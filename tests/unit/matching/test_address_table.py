"""The packed address table answers exactly like a dict of the same rows, collisions included."""

from __future__ import annotations

import random
import zlib
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailroom.matching import address_table
from mailroom.matching.address_table import AddressTable
from mailroom.matching.index import AddressHit

ADDRESS = st.from_regex(r"[a-zé0-9.+]{1,12}@[a-z0-9]{1,8}\.(example|test)", fullmatch=True)
ROW = st.tuples(
    ADDRESS,
    st.integers(1, 2**40),
    st.sampled_from(["lead", "contact", "account"]),
    st.sampled_from(["main", "secondary", "Other e-mail"]),
    st.none() | st.integers(1, 2**40),
)
# No timed assertion (hypothesis' default 200 ms deadline is one): the first example
# loads numpy, which takes seconds on a loaded machine.
NO_DEADLINE = settings(deadline=None)
# `find` probes a batch in numpy arrays and a few addresses one at a time: FEW = 0 sends
# every call to the first, a huge FEW every call to the second.
BOTH_PATHS = (0, 10**9)


def reference(rows: list[tuple[str, int, str, str, int | None]]) -> dict[str, list[AddressHit]]:
    found: dict[str, list[AddressHit]] = {}
    for address, record_id, rtype, field_name, account_id in rows:
        found.setdefault(address, []).append(AddressHit(record_id, rtype, field_name, account_id))
    return found


@NO_DEADLINE
@given(st.lists(ROW, max_size=60), st.lists(ADDRESS, max_size=20))
def test_the_table_answers_like_a_dict_of_the_same_rows(
    rows: list[tuple[str, int, str, str, int | None]], others: list[str]
) -> None:
    table = AddressTable(rows)
    expected = reference(rows)
    assert len(table) == len(rows)
    for address in [r[0] for r in rows] + others:
        assert list(table.get(address)) == expected.get(address, [])


def test_addresses_whose_hashes_collide_keep_their_own_records(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(address_table, "hash", lambda _: 7, raising=False)
    rows = [
        ("ann@a.example", 1, "lead", "main", None),
        ("bob@b.example", 2, "contact", "main", 9),
        ("ann@a.example", 3, "account", "billing", None),
    ]
    table = AddressTable(rows)
    assert table.get("ann@a.example") == (
        AddressHit(1, "lead", "main", None),
        AddressHit(3, "account", "billing", None),
    )
    assert table.get("bob@b.example") == (AddressHit(2, "contact", "main", 9),)
    assert table.get("eve@e.example") == ()


@NO_DEADLINE
@given(st.lists(ROW, max_size=60), st.lists(ADDRESS, max_size=30), st.randoms())
def test_a_batch_is_answered_like_a_dict_of_the_same_rows(
    rows: list[tuple[str, int, str, str, int | None]], others: list[str], rng: random.Random
) -> None:
    table = AddressTable(rows)
    expected = reference(rows)
    asked = [r[0] for r in rows] + others + [r[0] for r in rows[:5]]  # repeats too
    rng.shuffle(asked)
    wanted = {a: tuple(expected[a]) for a in asked if a in expected}
    for few in BOTH_PATHS:
        with mock.patch.object(address_table, "FEW", few):
            assert table.find(asked) == wanted
            assert table.find(iter(asked)) == wanted  # any iterable, not only a list


@NO_DEADLINE
@given(
    st.lists(ROW, max_size=40),
    st.lists(ADDRESS, max_size=20),
    st.integers(1, 6),
    st.integers(-(2**63), 2**63 - 1),
)
def test_crowded_and_colliding_hashes_still_answer_like_a_dict(
    rows: list[tuple[str, int, str, str, int | None]],
    others: list[str],
    spread: int,
    base: int,
) -> None:
    """Hashes squeezed into a few values (at either end of the int64 range, so probes run
    past the slot array's end and wrap): long probe runs, and different addresses under
    one hash, must not change an answer."""

    def crowded(value: str) -> int:
        step = zlib.crc32(value.encode()) % spread
        return base - step if base > 0 else base + step

    with mock.patch.object(address_table, "hash", crowded, create=True):
        table = AddressTable(rows)
        expected = reference(rows)
        asked = [r[0] for r in rows] + others
        for few in BOTH_PATHS:
            with mock.patch.object(address_table, "FEW", few):
                found = table.find(asked)
            assert found == {a: tuple(expected[a]) for a in asked if a in expected}


def test_an_empty_table_finds_nothing() -> None:
    table = AddressTable(())
    assert len(table) == 0
    assert table.find(["ann@a.example"]) == {}
    assert table.get("ann@a.example") == ()

"""The packed address table answers exactly like a dict of the same rows, collisions included."""

from __future__ import annotations

import pytest
from hypothesis import given
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


def reference(rows: list[tuple[str, int, str, str, int | None]]) -> dict[str, list[AddressHit]]:
    found: dict[str, list[AddressHit]] = {}
    for address, record_id, rtype, field_name, account_id in rows:
        found.setdefault(address, []).append(AddressHit(record_id, rtype, field_name, account_id))
    return found


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

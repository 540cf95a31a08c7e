"""The subject fallback's people index finds exactly the pairs the pairwise rule allows."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from mailroom.matching.subject_threads import _Stored, _SubjectIndex

PEOPLE = ["ann@acme.example", "bob@acme.example", "jo@client.example", "max@other.example"]


def internal(address: str) -> bool:
    return address.endswith("@acme.example")


def shared(a: frozenset[str], b: frozenset[str]) -> bool:
    """The rule, pair by pair: overlap on an outside person, or, when both messages are
    among the company's own people only, on anyone."""
    outside_a = {x for x in a if not internal(x)}
    outside_b = {x for x in b if not internal(x)}
    if outside_a or outside_b:
        return bool(outside_a & outside_b)
    return bool(a & b)


groups = st.frozensets(st.sampled_from(PEOPLE), max_size=4)


def outside(people: frozenset[str]) -> set[str]:
    return {x for x in people if not internal(x)}


@given(stored=st.lists(groups, max_size=8), people=groups)
def test_the_index_finds_the_stored_messages_the_pairwise_rule_shares_with(
    stored: list[frozenset[str]], people: frozenset[str]
) -> None:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [_Stored(f"m{i}", False, when, group) for i, group in enumerate(stored)]
    index = _SubjectIndex(rows, outside)
    found = sorted(other.identity for other in index.sharing(people, outside(people)))
    assert found == sorted(row.identity for row in rows if shared(people, row.participants))

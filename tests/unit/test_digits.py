"""`is_number`: what it accepts, int() reads (property test over all of Unicode)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mailroom.digits import is_number


@given(st.text())
def test_whatever_is_number_accepts_int_reads_back_exactly(text: str) -> None:
    if is_number(text):
        assert str(int(text)).zfill(len(text)) == text


def test_unicode_digits_that_int_refuses_are_not_numbers() -> None:
    assert is_number("0042") and not is_number("²") and not is_number("①")
    assert not is_number("") and not is_number("-1") and not is_number("٣")

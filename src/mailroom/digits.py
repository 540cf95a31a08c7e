"""Whether a string is a plain decimal number, as ids and counts in user input must be."""

from __future__ import annotations

__all__ = ["is_number"]


def is_number(text: str) -> bool:
    """ASCII digits only. `str.isdigit()` also accepts `²` or `①`, which `int()` refuses: an
    id such as `/messages/²` must be "not found", never a server error."""
    return text.isascii() and text.isdigit()

"""Link reasons in words (issue 13, item 2): the pages never show `address:main`."""

from __future__ import annotations

import pytest

from mailroom.matching.reasons import reason_words


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("address:main", "their address"),
        ("address:secondary", "their secondary address"),
        ("address:contact", "their contact's address"),
        ("domain", "their company's domain"),
        ("thread", "same thread as a linked case"),
        ("case-ref", "the subject names the case"),
        ("manual", "by hand"),
        ("rule:web-leads", "rule web-leads"),
        ("something-new", "something-new"),
    ],
)
def test_every_link_reason_reads_as_words(code: str, words: str) -> None:
    assert reason_words(code) == words

"""A message written only in HTML still goes out with a plain-text alternative made from
it (outbox.compose.html_to_text), safely: no markup, script or style text survives.
Sending one for real is in tests/integration/outbox/test_compose_html_text.py; the compose
page's label in tests/interfaces/web/test_compose.py.
"""

from __future__ import annotations

from mailroom.outbox.compose import Draft, compose, html_to_text
from tests.helpers.html_mail import HTML, parts


def test_html_to_text_keeps_what_a_reader_sees_one_block_per_line() -> None:
    text = html_to_text(HTML)
    assert text.splitlines() == [
        "Your quote",
        "Hello Jo & team,",
        "the price is < 100 EUR.",
        "one",
        "two",
        "",
        "<script>alert(1)</script> is text here",
    ]
    for hidden in ("Offer", "color", "alert('x')", "internal note", "<b>", "<p>"):
        assert hidden not in text


def test_html_only_draft_gets_a_generated_text_alternative() -> None:
    draft = Draft("ann@acme.example", "Ann", ["jo@client.example"], "Quote", text="", html=HTML)
    got = parts(compose(draft).data)
    assert got["text/plain"].splitlines() == html_to_text(HTML).splitlines()
    assert "<b>Jo</b>" in got["text/html"]


def test_written_text_is_kept_next_to_the_html() -> None:
    draft = Draft("ann@acme.example", "", ["jo@client.example"], "Q", text="Mine.\n", html=HTML)
    assert parts(compose(draft).data)["text/plain"].strip() == "Mine."

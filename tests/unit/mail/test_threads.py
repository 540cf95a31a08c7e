"""Message-IDs, References and fingerprints."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailroom.mail.threads import (
    fingerprint_id,
    normalise_message_id,
    parse_references,
    subject_key,
)

FINGERPRINT = re.compile(r"fp-[0-9a-f]{32}@mailroom\.invalid")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<abc@host.example>", "abc@host.example"),
        ("  <abc@host.example>  (added by postmaster)", "abc@host.example"),
        ("(a <comment@looks.like.an.id>) <real@host>", "real@host"),
        ('Your message of "Mon, 2 Jan 2006 <x@y>" <real@host>', "real@host"),
        ("<abc\r\n @host.example>", "abc@host.example"),  # folded inside the id
        ("<> <second@host>", "second@host"),
        ("<first@host> <second@host>", "first@host"),
        ("<12345.ABC-def>", "12345.ABC-def"),  # no @: still an id when bracketed
        ("bare-id@host.example", "bare-id@host.example"),
        ("CaseKept@Host", "CaseKept@Host"),
        ("no id here", None),
        ("bare id@host with spaces", None),
        ("two@bare ids@here", None),  # ambiguous without brackets
        ("", None),
        ("<>", None),
        ("<unterminated@host", None),
        ("<a\x00b@host>", None),
    ],
)
def test_normalise_message_id(value: str, expected: str | None) -> None:
    assert normalise_message_id(value) == expected


def test_normalise_message_id_of_none() -> None:
    assert normalise_message_id(None) is None


def test_parse_references() -> None:
    value = "<a@x> <b@x>\r\n <a@x> (comment <c@x>)\r\n\t<d@x>"
    assert parse_references(value) == ("a@x", "b@x", "d@x")
    # mikel/mail's "multiple references with one invalid": an id folded in the middle
    assert parse_references("<baz@bar.net>, <invalid.   \r\n something@bar.net>") == (
        "baz@bar.net",
        "invalid.something@bar.net",
    )
    assert parse_references("bare@one bare@two") == ("bare@one", "bare@two")
    assert parse_references("") == ()
    assert parse_references(None) == ()


_id_text = st.from_regex(
    r"[A-Za-z0-9.$%&'*+/=?^_`{|}~!#-]{1,30}@[A-Za-z0-9.-]{1,20}", fullmatch=True
)


@given(_id_text)
def test_bracketed_ids_round_trip(msgid: str) -> None:
    assert normalise_message_id(f"<{msgid}>") == msgid
    assert normalise_message_id(f" <{msgid}> (comment)") == msgid


@given(st.lists(_id_text, max_size=10))
def test_references_round_trip_in_order_without_duplicates(ids: list[str]) -> None:
    value = "\r\n ".join(f"<{i}>" for i in ids)
    assert parse_references(value) == tuple(dict.fromkeys(ids))


@given(st.text())
def test_ids_are_clean_whatever_the_input(value: str) -> None:
    result = normalise_message_id(value)
    if result is not None:
        assert result
        assert not re.search(r"[\s<>\x00-\x1f\x7f]", result)
        assert normalise_message_id(f"<{result}>") == result
    for ref in parse_references(value):
        assert ref and not re.search(r"[\s<>\x00-\x1f\x7f]", ref)


def test_fingerprint_shape_and_stability() -> None:
    args = ("Mon, 2 Jan 2006 10:00:00 +0000", "a@x.example", "b@y.example", "Hi", b"Body\n")
    first = fingerprint_id(*args)
    assert FINGERPRINT.fullmatch(first)
    assert fingerprint_id(*args) == first


def test_fingerprint_ignores_refolding_and_line_endings() -> None:
    base = fingerprint_id("Mon, 2 Jan 2006", "A <a@x>", "b@y, c@z", "A long subject", b"x\ny\n")
    assert base == fingerprint_id(
        " Mon,  2 Jan 2006", "A\r\n <a@x>", "b@y,\r\n\tc@z", "A long\r\n subject", b"x\r\ny\r\n\r\n"
    )


@pytest.mark.parametrize("field", range(5))
def test_fingerprint_depends_on_every_field(field: int) -> None:
    args: list[str | bytes] = ["date", "from", "to", "subject", b"body"]
    before = fingerprint_id(*args)  # type: ignore[arg-type]
    args[field] = args[field] + (b"!" if field == 4 else "!")  # type: ignore[operator]
    assert fingerprint_id(*args) != before  # type: ignore[arg-type]


def test_fingerprint_fields_cannot_bleed_into_each_other() -> None:
    assert fingerprint_id("ab", "c", "", "", b"") != fingerprint_id("a", "bc", "", "", b"")


@given(st.text(), st.text(), st.text(), st.text(), st.binary())
def test_fingerprint_never_raises(d: str, f: str, t: str, s: str, body: bytes) -> None:
    assert FINGERPRINT.fullmatch(fingerprint_id(d, f, t, s, body))


@pytest.mark.parametrize(
    ("subject", "key"),
    [
        ("Re: Quote", "quote"),
        ("RE: FW: Fwd: quote", "quote"),
        ("AW: WG: Angebot", "angebot"),
        ("TR: SV: Offre", "offre"),
        ("RE[2]: Re(3): Re^2: Quote", "quote"),
        ("Re : Re:Quote  for   May", "quote for may"),
        ("Fwd\uff1aQuote", "quote"),
        ("Re:", ""),
        ("", ""),
        ("Return of goods", "return of goods"),
        ("Area: north", "area: north"),
    ],
)
def test_subject_key_strips_reply_and_forward_prefixes_only(subject: str, key: str) -> None:
    assert subject_key(subject) == key

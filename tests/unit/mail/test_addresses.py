"""Addresses: normalisation (properties and real-world oddities) and address-list parsing."""

from __future__ import annotations

from email.utils import formataddr
from unittest import mock

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from mailroom.mail import addresses
from mailroom.mail.addresses import domain_of, is_valid, normalise, parse_address_list
from mailroom.mail.message import Address

# --- normalise: examples ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("alice@example.com", "alice@example.com"),
        ("  <Alice.Smith@Example.COM>  ", "alice.smith@example.com"),
        ("user@bücher.example", "user@xn--bcher-kva.example"),
        ("User@BÜCHER.Example", "user@xn--bcher-kva.example"),
        ("jo@xn--bcher-kva.example", "jo@xn--bcher-kva.example"),
        ("k..allen@enron.com", "k..allen@enron.com"),  # Enron: double dot, kept
        (".ward@enron.com", ".ward@enron.com"),  # Enron: leading dot, kept
        ('"jhyatt"@enron.com', "jhyatt@enron.com"),  # redundant quotes go
        ("o'brien@example.ie", "o'brien@example.ie"),
        ("x@example.com.", "x@example.com"),  # the root dot
        ("mailto:x@example.com", "x@example.com"),
        ("<@relay.example:mary@example.net>", "mary@example.net"),  # obsolete source route
        ("a@[192.0.2.1]", "a@[192.0.2.1]"),
        ("a_b+tag@sub_domain.example.org", "a_b+tag@sub_domain.example.org"),
    ],
)
def test_normalise_examples(raw: str, expected: str) -> None:
    assert normalise(raw) == expected
    assert is_valid(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "no-at-sign",
        "@example.com",
        "user@",
        "user@localhost",  # dotless domain
        "user@example..com",
        "user@-example.com",
        "a b@example.com",
        "ab@exa mple.com",
        '"a b"@example.com',
        "a@b@example.com",
        "user@example.com\r\nBcc: victim@example.org",
        "user@example.com\n",
        "\r\nuser@example.com",
        "user\x00@example.com",
        "user@example.com\x7f",
        "jörg@example.com",  # non-ASCII local part: not lower-case ASCII
        "user@exa\u00a0mple.com",
        "user@" + "a" * 64 + ".com",  # label over 63
        "a@[999.0.0.1]",
        "<>",
        "x" * 65 + "@example.com",
    ],
)
def test_normalise_rejects(raw: str) -> None:
    assert normalise(raw) is None
    assert not is_valid(raw)


def test_domain_of() -> None:
    assert domain_of("<jo@Bücher.example>") == "xn--bcher-kva.example"
    assert domain_of("K..Allen@ENRON.com") == "enron.com"
    assert domain_of("not an address") == ""
    assert domain_of("a@b.com\r\nBcc: x@evil.example") == ""  # junk is never attributed


# --- normalise: properties ----------------------------------------------------------------

_unicode_label = st.text(
    # Latin with diacritics, Cyrillic (ждка) and Hebrew (שלום) letters, digits
    alphabet=st.sampled_from(
        "abcdefghijklmnopqrstuvwxyzäöüßéñÄÖÜ0123456789"
        "\u0436\u0434\u043a\u0430\u05e9\u05dc\u05d5\u05dd"
    ),
    min_size=1,
    max_size=12,
)
_unicode_domains = st.builds(
    lambda labels, tld: ".".join([*labels, tld]),
    st.lists(_unicode_label, min_size=1, max_size=3),
    st.sampled_from(["com", "example", "org", "de", "рф"]),
)
_locals = st.from_regex(r"[A-Za-z0-9._%+'=-]{1,20}", fullmatch=True)
_address_like = st.one_of(
    st.emails(),
    st.builds(lambda local, domain: f"{local}@{domain}", _locals, _unicode_domains),
    st.builds(lambda a: f" <{a.upper()}> ", st.emails()),
)


@given(st.one_of(st.text(), _address_like))
@example("user@bücher.example")
@example("A@B.C")
def test_normalise_is_idempotent(raw: str) -> None:
    once = normalise(raw)
    if once is not None:
        assert normalise(once) == once


@given(st.one_of(st.text(), _address_like))
def test_normalise_gives_lower_case_ascii_or_none(raw: str) -> None:
    result = normalise(raw)
    if result is not None:
        assert result.isascii()
        assert result == result.lower()
        assert not any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in result)
        assert result.count("@") == 1


@given(st.emails())
def test_every_rfc_address_is_accepted(raw: str) -> None:
    result = normalise(raw)
    assert result is not None
    assert result.rpartition("@")[2] == raw.rpartition("@")[2].lower().rstrip(".")


@given(_address_like, st.sampled_from(["\r\n", "\n", "\r"]), st.text())
def test_header_injection_is_rejected(raw: str, newline: str, rest: str) -> None:
    assert normalise(raw + newline + rest) is None
    assert normalise(newline + raw) is None


@given(_locals, _unicode_domains)
def test_unicode_domains_become_punycode(local: str, domain: str) -> None:
    result = normalise(f"{local}@{domain}")
    assume(result is not None)  # a generated label can be invalid under IDNA
    assert result is not None
    assert result.split("@")[1] == result.split("@")[1].encode("ascii").decode("ascii")
    labels = result.split("@")[1].split(".")
    for label, original in zip(labels, domain.split("."), strict=True):
        if not original.isascii():
            assert label.startswith("xn--")


# --- parse_address_list -------------------------------------------------------------------


def test_parse_address_list_everyday_forms() -> None:
    header = (
        'Alice Example <Alice@Example.com>, "Doe, John" <john@example.org>, '
        "bob@example.net, =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <jorg@bücher.example>"
    )
    assert parse_address_list(header) == (
        Address("alice@example.com", "Alice Example"),
        Address("john@example.org", "Doe, John"),
        Address("bob@example.net", ""),
        Address("jorg@xn--bcher-kva.example", "Jörg Müller"),
    )


def test_parse_address_list_dedupes_in_order_keeping_a_name() -> None:
    header = "a@example.com, B <b@example.com>, A Person <A@EXAMPLE.com>, b@example.com"
    assert parse_address_list(header) == (
        Address("a@example.com", "A Person"),
        Address("b@example.com", "B"),
    )


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Undisclosed recipients:;", ()),
        ("unlisted-recipients:; (no To-header on input)", ()),
        ("team: a@example.com, b@example.com;, c@example.com", ("a", "b", "c")),
        ("houston <.ward@enron.com>, k..allen@enron.com", (".ward", "k..allen")),
        # strict mode rejects the whole header; each entry is then read alone
        ("smith@example.com, Mikel@Lindsaar <raasdnil@example.com>", ("smith", "raasdnil")),
        ('<"fs1/bluestn"@uunet.uu.net@enron.com>', ()),
        ("Mary Smith <@machine.tld:mary@example.com>, , jdoe@example.com", ("mary", "jdoe")),
        ("", ()),
        ("garbage without any address", ()),
        ("a@example.com,,,", ("a",)),
        ("a@example.com\r\n\tb@example.com", ()),  # comma missing: ambiguous, so nothing
        ("A <a@example.com>,\r\n\tB <b@example.com>", ("a", "b")),  # folded
    ],
)
def test_parse_address_list_odd_headers(header: str, expected: tuple[str, ...]) -> None:
    found = tuple(a.address.split("@")[0] for a in parse_address_list(header))
    assert found == expected


def test_cve_2023_27043_never_yields_the_decoy() -> None:
    for header in (
        "alice@example.org)<bob@example.com>",
        "alice@example.org)\r\n (<bob@example.com>",
        '"alice@example.org" <bob@example.com>',
    ):
        found = [a.address for a in parse_address_list(header)]
        assert "alice@example.org" not in found, header


def test_raw_8bit_names_and_domains() -> None:
    raw = "J\udcc3\udcb6rg <j@b\udcc3\udcbccher.example>"  # UTF-8 bytes, surrogate-escaped
    assert parse_address_list(raw) == (Address("j@xn--bcher-kva.example", "Jörg"),)
    latin = "Fr\udcf6sche <f@example.com>"  # a Latin-1 byte
    assert parse_address_list(latin) == (Address("f@example.com", "Frösche"),)


_names = st.builds(
    lambda first, rest: (first + rest).strip(),
    st.sampled_from("ABCXYZÄÖÜЖשé"),
    st.text(alphabet=st.sampled_from("abcxyz ABC,.'-&äöüß日本ЖД"), max_size=20),
).map(lambda s: " ".join(s.split()))


@given(st.lists(st.tuples(_names, st.emails()), min_size=1, max_size=6))
def test_formatted_lists_round_trip(entries: list[tuple[str, str]]) -> None:
    header = ", ".join(formataddr((name, addr)) for name, addr in entries)
    expected: dict[str, str] = {}
    for name, addr in entries:
        key = normalise(addr)
        assert key is not None
        if key not in expected or not expected[key]:
            expected[key] = name
    parsed = parse_address_list(header)
    assert [a.address for a in parsed] == list(expected)
    assert [a.name for a in parsed] == list(expected.values())


@given(st.lists(st.tuples(_names, st.emails()), min_size=1, max_size=6))
def test_fast_list_reader_agrees_with_getaddresses(entries: list[tuple[str, str]]) -> None:
    header = ", ".join(formataddr((name, addr)) for name, addr in entries)
    fast = parse_address_list(header)
    with mock.patch.object(addresses, "_simple_pairs", lambda value: None):
        general = parse_address_list(header)
    assert fast == general


@given(st.text())
def test_parse_address_list_never_raises_and_keeps_only_clean_values(header: str) -> None:
    for address in parse_address_list(header):
        assert normalise(address.address) == address.address
        assert not any(ord(ch) < 32 for ch in address.name)

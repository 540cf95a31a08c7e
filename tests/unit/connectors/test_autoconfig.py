"""The autoconfig parser (connectors/autoconfig.py): a Thunderbird document read right,
hostile XML refused before expat sees it, and garbage of any shape answered only with
NotAnAutoconfig."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailroom.connectors.autoconfig import MAX_BYTES, NotAnAutoconfig, parse
from mailroom.connectors.base import Security

EMAIL = "ann.lee@acme.test"


def _document(servers: str, name: str = "Acme") -> bytes:
    return (
        '<?xml version="1.0"?><clientConfig version="1.1"><emailProvider id="acme.test">'
        f"<displayName>{name}</displayName>{servers}</emailProvider></clientConfig>"
    ).encode()


def _server(kind: str, host: str, port: str, socket_type: str, user: str = "%EMAILADDRESS%") -> str:
    element = "outgoingServer" if kind == "smtp" else "incomingServer"
    return (
        f'<{element} type="{kind}"><hostname>{host}</hostname><port>{port}</port>'
        f"<socketType>{socket_type}</socketType><username>{user}</username></{element}>"
    )


def test_a_thunderbird_document_gives_each_kind_with_placeholders_filled() -> None:
    doc = _document(
        _server("imap", "imap.%EMAILDOMAIN%", "993", "SSL")
        + _server("pop3", "pop.acme.test", "995", "SSL", "%EMAILLOCALPART%")
        + _server("smtp", "smtp.acme.test", "587", "STARTTLS")
    )
    found = parse(doc, email=EMAIL)
    assert found.provider == "Acme"
    assert found.imap is not None and found.pop3 is not None and found.smtp is not None
    assert (found.imap.host, found.imap.port, found.imap.security) == (
        "imap.acme.test",
        993,
        Security.SSL,
    )
    assert found.imap.username == EMAIL
    assert found.pop3.username == "ann.lee"
    assert found.smtp.security is Security.STARTTLS


def test_an_encrypted_server_is_chosen_over_a_plain_one_listed_first() -> None:
    doc = _document(
        _server("imap", "plain.acme.test", "143", "plain")
        + _server("imap", "tls.acme.test", "143", "STARTTLS")
        + _server("imap", "ssl.acme.test", "993", "SSL")
    )
    found = parse(doc, email=EMAIL)
    assert found.imap is not None and found.imap.host == "tls.acme.test"


def test_only_plain_servers_are_still_offered_as_plain() -> None:
    found = parse(_document(_server("imap", "mail.acme.test", "143", "plain")), email=EMAIL)
    assert found.imap is not None and found.imap.security is Security.NONE


@pytest.mark.parametrize(
    ("host", "port", "socket_type"),
    [
        ("mail.acme.test", "0", "SSL"),
        ("mail.acme.test", "70000", "SSL"),
        ("mail.acme.test", "99\uff13", "SSL"),  # a non-ASCII digit
        ("mail.acme.test", "993", "QUANTUM"),
        ("mail acme test", "993", "SSL"),
        ("-bad.acme.test", "993", "SSL"),
        ("", "993", "SSL"),
    ],
)
def test_a_server_with_a_bad_host_port_or_socket_type_is_skipped(
    host: str, port: str, socket_type: str
) -> None:
    with pytest.raises(NotAnAutoconfig, match="no usable"):
        parse(_document(_server("imap", host, port, socket_type)), email=EMAIL)


def test_an_unfillable_username_placeholder_leaves_the_username_out() -> None:
    doc = _document(_server("imap", "mail.acme.test", "993", "SSL", "%REALNAME%"))
    found = parse(doc, email=EMAIL)
    assert found.imap is not None and found.imap.username is None


def test_oauth2_among_the_methods_is_reported() -> None:
    server = _server("imap", "mail.acme.test", "993", "SSL").replace(
        "</username>", "</username><authentication>OAuth2</authentication>"
    )
    found = parse(_document(server), email=EMAIL)
    assert found.imap is not None and found.imap.oauth


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE clientConfig [
 <!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
]><clientConfig><emailProvider><displayName>&d;</displayName></emailProvider></clientConfig>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE clientConfig [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<clientConfig><emailProvider><displayName>&x;</displayName></emailProvider></clientConfig>"""


@pytest.mark.parametrize("document", [BILLION_LAUGHS, EXTERNAL_ENTITY])
def test_entity_declarations_are_refused_before_parsing(document: bytes) -> None:
    with pytest.raises(NotAnAutoconfig, match="DOCTYPE"):
        parse(document, email=EMAIL)


@pytest.mark.parametrize(
    ("document", "why"),
    [
        (b"", "well-formed"),
        (b"<html><body>Not found</body></html>", "not clientConfig"),
        (b"<clientConfig/>", "no emailProvider"),
        (b"<clientConfig><emailProvider/></clientConfig>", "no usable"),
        (b"<clientConfig><emailProvider>" + b"x" * MAX_BYTES, "larger than"),
    ],
)
def test_a_document_that_is_not_an_autoconfig_says_why(document: bytes, why: str) -> None:
    with pytest.raises(NotAnAutoconfig, match=why):
        parse(document, email=EMAIL)


XMLISH = st.lists(
    st.sampled_from(
        [
            "<clientConfig>",
            "</clientConfig>",
            "<emailProvider>",
            "</emailProvider>",
            '<incomingServer type="imap">',
            '<outgoingServer type="smtp">',
            "</incomingServer>",
            "<hostname>",
            "</hostname>",
            "<port>",
            "</port>",
            "<socketType>SSL</socketType>",
            "%EMAILDOMAIN%",
            "993",
            "&amp;",
            "&bogus;",
            "<![CDATA[x]]>",
            "\x00",
            "é",
            "mail.acme.test",
        ]
    )
    | st.text(max_size=8),
    max_size=40,
).map(lambda parts: "".join(parts).encode("utf-8", "surrogatepass"))


@settings(max_examples=300, deadline=None)
@given(document=st.binary(max_size=2000) | XMLISH)
def test_any_bytes_give_an_autoconfig_or_not_an_autoconfig_never_another_error(
    document: bytes,
) -> None:
    try:
        found = parse(document, email=EMAIL)
    except NotAnAutoconfig:
        return
    for endpoint in (found.imap, found.pop3, found.smtp):
        if endpoint is not None:
            assert 1 <= endpoint.port <= 65535
            assert endpoint.host and " " not in endpoint.host

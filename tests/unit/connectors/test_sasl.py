"""SASL bearer responses (connectors/sasl.py) and the scrubbing of every form of a token."""

from __future__ import annotations

import base64
import poplib

from mailroom.connectors import sasl
from mailroom.connectors.base import ServerSettings
from mailroom.connectors.pop3 import Pop3Mailbox
from mailroom.errors import AuthenticationError, TokenRejected

TOKEN = "ya29.a0-secret-token"


def test_xoauth2_response_is_googles_format() -> None:
    assert (
        sasl.client_response("XOAUTH2", "ann@acme.example", TOKEN)
        == b"user=ann@acme.example\x01auth=Bearer ya29.a0-secret-token\x01\x01"
    )


def test_oauthbearer_response_has_a_gs2_header_with_escaped_authzid() -> None:
    assert (
        sasl.client_response("OAUTHBEARER", "a,b=c@x", TOKEN)
        == b"n,a=a=2Cb=3Dc@x,\x01auth=Bearer ya29.a0-secret-token\x01\x01"
    )


def test_xoauth2_is_preferred_and_oauthbearer_used_when_alone() -> None:
    assert sasl.choose_mechanism(["PLAIN", "XOAUTH2", "OAUTHBEARER"]) == "XOAUTH2"
    assert sasl.choose_mechanism(["PLAIN", "OAUTHBEARER"]) == "OAUTHBEARER"
    assert sasl.choose_mechanism([]) == "XOAUTH2"
    assert sasl.choose_mechanism(["XOAUTH2"], "oauthbearer") == "OAUTHBEARER"


def test_the_error_challenge_is_answered_without_the_token() -> None:
    for mechanism, ack in (("XOAUTH2", b""), ("OAUTHBEARER", b"\x01")):
        exchange = sasl.BearerExchange(mechanism, "ann", TOKEN)
        assert TOKEN.encode() in exchange(b"")
        assert exchange(b'{"status":"401","schemes":"bearer"}') == ack
        assert exchange.status == "401"


def test_every_form_of_the_token_is_scrubbed_from_errors() -> None:
    settings = ServerSettings(host="h", port=995, username="ann", access_token=TOKEN)
    box = Pop3Mailbox(None, host="h", port=995, username="ann")
    box.bearer = True
    box._secrets = sasl.login_secrets(settings)
    wire = base64.b64encode(sasl.client_response("XOAUTH2", "ann", TOKEN)).decode()
    said = f"-ERR [AUTH] no: {TOKEN} {wire}".encode()
    error = box._translate("AUTH", poplib.error_proto(said))
    assert isinstance(error, TokenRejected)
    assert TOKEN not in error.message and wire not in error.message
    assert "********" in error.message


def test_a_token_refusal_is_not_a_password_refusal() -> None:
    box = Pop3Mailbox(None, host="h", port=995, username="ann")
    password_error = box._translate("PASS", poplib.error_proto(b"-ERR [AUTH] bad"))
    assert type(password_error) is AuthenticationError
    box.bearer = True
    assert isinstance(box._translate("AUTH", poplib.error_proto(b"-ERR [AUTH] bad")), TokenRejected)


def test_a_rejected_token_never_counts_as_a_wrong_password() -> None:
    from mailroom.sync.health import diagnose

    error = TokenRejected("The IMAP server h refused the access token for ann (no)")
    assert not isinstance(error, AuthenticationError)
    assert not diagnose(error).auth_failure


def test_settings_never_show_the_token() -> None:
    settings = ServerSettings(host="h", port=993, username="ann", access_token=TOKEN)
    assert TOKEN not in repr(settings)

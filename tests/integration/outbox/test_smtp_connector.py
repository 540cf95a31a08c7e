"""The SMTP connector against a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import pytest

from mailroom.connectors.base import Security, ServerSettings
from mailroom.connectors.smtp import SendRefused, SmtpSender, canonical_lines
from mailroom.errors import AuthenticationError, TLSError
from tests.conftest_smtp import HOST, SmtpTestServer

MESSAGE = (
    b"From: sender@acme.example\r\nTo: jo@client.example\r\nSubject: Quote\r\n"
    b"Message-ID: <q1@acme.example>\r\n\r\nHello Jo\r\n"
)


def settings(
    smtp: SmtpTestServer,
    *,
    port: int | None = None,
    security: Security = Security.STARTTLS,
    password: str | None = None,
    allow_self_signed: bool = False,
) -> ServerSettings:
    return ServerSettings(
        host=HOST,
        port=port or smtp.starttls_port,
        username=smtp.username,
        password=password if password is not None else smtp.password,
        security=security,
        allow_self_signed=allow_self_signed,
        timeout=10,
    )


def test_starttls_with_auth_delivers_one_message_to_the_envelope(smtp: SmtpTestServer) -> None:
    with SmtpSender.connect(settings(smtp), ssl_context=smtp.ssl_context()) as sender:
        accepted = sender.send("sender@acme.example", ["jo@client.example"], MESSAGE)
    assert accepted.code == 250
    (got,) = smtp.messages
    assert (got.mail_from, got.rcpt_tos) == ("sender@acme.example", ["jo@client.example"])
    assert got.data.rstrip(b"\r\n") == MESSAGE.rstrip(b"\r\n")


def test_implicit_tls_with_auth_delivers(smtp: SmtpTestServer) -> None:
    cfg = settings(smtp, port=smtp.smtps_port, security=Security.SSL)
    with SmtpSender.connect(cfg, ssl_context=smtp.ssl_context()) as sender:
        sender.send("sender@acme.example", ["jo@client.example"], MESSAGE)
    assert [m.port for m in smtp.messages] == [smtp.smtps_port]


def test_starttls_required_never_falls_back_to_plain_text(smtp: SmtpTestServer) -> None:
    cfg = settings(smtp, port=smtp.plain_port)
    with pytest.raises(TLSError, match="does not offer STARTTLS"):
        SmtpSender.connect(cfg, ssl_context=smtp.ssl_context())
    assert smtp.messages == []


def test_an_untrusted_certificate_is_refused_unless_allowed(smtp: SmtpTestServer) -> None:
    with pytest.raises(TLSError, match="certificate"):
        SmtpSender.connect(settings(smtp))  # the system trust store does not know the test CA
    with SmtpSender.connect(settings(smtp, allow_self_signed=True)) as sender:
        sender.send("sender@acme.example", ["jo@client.example"], MESSAGE)
    assert len(smtp.messages) == 1


def test_a_wrong_password_is_an_authentication_error_without_the_password(
    smtp: SmtpTestServer,
) -> None:
    wrong = "not-the-password-42"
    with pytest.raises(AuthenticationError) as caught:
        SmtpSender.connect(settings(smtp, password=wrong), ssl_context=smtp.ssl_context())
    assert wrong not in str(caught.value) and caught.value.hint


def test_a_refused_recipient_aborts_the_whole_transaction(smtp: SmtpTestServer) -> None:
    with SmtpSender.connect(settings(smtp), ssl_context=smtp.ssl_context()) as sender:
        with pytest.raises(SendRefused) as permanent:
            sender.send("sender@acme.example", ["jo@client.example", "reject@x.example"], MESSAGE)
        with pytest.raises(SendRefused) as transient:
            sender.send("sender@acme.example", ["defer@x.example"], MESSAGE)
        sender.send("sender@acme.example", ["jo@client.example"], MESSAGE)  # still usable
    assert (permanent.value.permanent, permanent.value.reason, permanent.value.code) == (
        True,
        "recipient",
        550,
    )
    assert (transient.value.permanent, transient.value.code) == (False, 451)
    assert len(smtp.messages) == 1


def test_a_message_over_the_servers_size_is_refused_before_data(smtp: SmtpTestServer) -> None:
    big = MESSAGE + b"x" * (3 * 1024 * 1024) + b"\r\n"
    with SmtpSender.connect(settings(smtp), ssl_context=smtp.ssl_context()) as sender:
        assert sender.max_size == 2 * 1024 * 1024
        with pytest.raises(SendRefused) as refused:
            sender.send("sender@acme.example", ["jo@client.example"], big)
    assert (refused.value.reason, refused.value.permanent) == ("size", True)
    assert smtp.messages == []


@pytest.mark.parametrize(
    "trick",
    [
        b"\r\n.\r\n",  # the real end of data, inside a body
        b"\n.\n",  # bare LF around a dot
        b"\r.\r\n",  # bare CR before a dot (SMTP smuggling)
        b"\n.\r\n",
        b"\r\n.\n",
    ],
)
def test_no_body_can_smuggle_a_second_message(smtp: SmtpTestServer, trick: bytes) -> None:
    smuggled = (
        b"MAIL FROM:<evil@attacker.example>\r\nRCPT TO:<victim@client.example>\r\nDATA\r\n"
        b"From: ceo@acme.example\r\nSubject: smuggled\r\n\r\npay now\r\n.\r\n"
    )
    data = MESSAGE + b"before" + trick + smuggled + b"after\r\n"
    with SmtpSender.connect(settings(smtp), ssl_context=smtp.ssl_context()) as sender:
        sender.send("sender@acme.example", ["jo@client.example"], data)
    (got,) = smtp.messages
    assert got.rcpt_tos == ["jo@client.example"]
    assert b"MAIL FROM:<evil@attacker.example>" in got.data and got.data.endswith(b"after\r\n")
    assert got.data == canonical_lines(data)

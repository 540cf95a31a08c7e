"""Socket and TLS failures read the same for every protocol, each with its own ports."""

from __future__ import annotations

import socket
import ssl

from mailroom.connectors.imap import ImapSource
from mailroom.connectors.pop3 import Pop3Mailbox
from mailroom.connectors.smtp import SmtpSender
from mailroom.errors import NetworkError, TLSError


def test_tls_failures_give_each_protocols_ports() -> None:
    handshake = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    for connection, ports in (
        (ImapSource(None, host="mail.test", port=993, username="u"), ("993", "143")),
        (Pop3Mailbox(None, host="mail.test", port=995, username="u"), ("995", "110")),
        (SmtpSender(None, host="mail.test", port=465), ("465", "587")),
    ):
        error = connection._translate("connect", handshake)
        assert isinstance(error, TLSError), connection.protocol
        assert error.hint is not None and all(p in error.hint for p in ports), error.hint
        assert "993" not in error.hint or connection.protocol == "IMAP"


def test_socket_failures_name_the_protocol_and_scrub_the_password() -> None:
    box = Pop3Mailbox(None, host="mail.test", port=110, username="u")
    box._secrets = ("hunter2",)
    refused = box._translate("connect", ConnectionRefusedError())
    assert isinstance(refused, NetworkError)
    assert refused.message == "The POP3 server mail.test:110 refused the connection"
    unknown = box._translate("connect", socket.gaierror(-2, "Name or service not known"))
    assert unknown.message == "The host name mail.test could not be resolved"
    odd = box._translate("USER", OSError(5, "I/O error near hunter2"))
    assert "hunter2" not in odd.message and "********" in odd.message

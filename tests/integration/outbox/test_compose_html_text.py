"""A message written only in HTML arrives, through the real SMTP server, with both parts
(the plain-text alternative made by outbox.compose.html_to_text)."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from mailroom.app import App
from mailroom.db.engine import transaction
from mailroom.outbox.delivery import deliver
from mailroom.outbox.service import SendRequest, queue_message
from mailroom_testing.dovecot import DovecotServer
from tests.conftest_smtp import OutboxEnv, SmtpTestServer, make_outbox_env

HTML = (
    "<html><head><title>Offer</title><style>p { color: red }</style></head><body>"
    "<h1>Your   quote</h1><p>Hello <b>Jo</b> &amp; team,<br>the price is &lt; 100&nbsp;EUR.</p>"
    "<script>alert('x')</script><!-- internal note --><ul><li>one</li><li>two</li></ul>"
    "<p>&lt;script&gt;alert(1)&lt;/script&gt; is text here</p></body></html>"
)


def parts(data: bytes) -> dict[str, str]:
    msg = message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    assert msg.get_content_type() == "multipart/alternative"
    found = {}
    for part in msg.iter_parts():
        assert isinstance(part, EmailMessage)
        found[part.get_content_type()] = str(part.get_content())
    return found


def test_html_only_message_arrives_with_both_parts(
    sqlite_app: App,
    dovecot: DovecotServer,
    imap_user: tuple[str, str],
    smtp: SmtpTestServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env: OutboxEnv = make_outbox_env(sqlite_app, dovecot, imap_user, smtp, monkeypatch)
    request = SendRequest(
        mailbox_id=env.mailbox_id, to=["jo@client.example"], subject="Quote", text="", html=HTML
    )
    with transaction(env.app.sessions) as session:
        entry_id = queue_message(session, request=request).id
    assert deliver(env.app, entry_id).status == "sent"
    (got,) = env.smtp.messages
    arrived = parts(got.data)
    assert "the price is < 100 EUR." in arrived["text/plain"]
    assert "alert('x')" not in arrived["text/plain"]

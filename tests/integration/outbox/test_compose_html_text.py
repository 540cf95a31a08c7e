"""A message written only in HTML arrives, through the real SMTP server, with both parts
(the plain-text alternative made by outbox.compose.html_to_text)."""

from __future__ import annotations

import pytest

from mailroom.app import App
from mailroom.db.engine import transaction
from mailroom.outbox.delivery import deliver
from mailroom.outbox.service import SendRequest, queue_message
from mailroom_testing.dovecot import DovecotServer
from tests.conftest_smtp import OutboxEnv, SmtpTestServer, make_outbox_env
from tests.helpers.html_mail import HTML, parts


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

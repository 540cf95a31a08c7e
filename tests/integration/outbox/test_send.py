"""Sending from the CRM end to end: real SMTP (aiosmtpd) and a real Dovecot for Sent."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailroom.app import App
from mailroom.crm.timeline import timeline_entries
from mailroom.db.engine import transaction
from mailroom.db.models import Message, MessageCopy, Record
from mailroom.db.outbox_models import MailboxSmtp, OutboxEntry
from mailroom.errors import BadInput
from mailroom.outbox.compose import FileAttachment
from mailroom.outbox.delivery import deliver, process_due
from mailroom.outbox.service import SendRequest, queue_message
from mailroom.security.secrets import mailbox_context
from mailroom.sync.engine import sync_mailbox
from mailroom_testing.dovecot import DovecotServer
from tests.conftest_smtp import OutboxEnv, SmtpTestServer, make_outbox_env


@pytest.fixture
def env(
    any_app: App,
    dovecot: DovecotServer,
    imap_user: tuple[str, str],
    smtp: SmtpTestServer,
    monkeypatch: pytest.MonkeyPatch,
) -> OutboxEnv:
    """On SQLite and on PostgreSQL."""
    return make_outbox_env(any_app, dovecot, imap_user, smtp, monkeypatch)


def send(env: OutboxEnv, **fields: object) -> tuple[int, str]:
    values: dict[str, object] = {
        "mailbox_id": env.mailbox_id,
        "to": ["Jo Client <jo@client.example>"],
        "subject": "Your quote",
        "text": "Hello Jo,\nhere is the quote.\n",
    }
    values.update(fields)
    with transaction(env.app.sessions) as session:
        entry = queue_message(session, request=SendRequest(**values))  # type: ignore[arg-type]
        entry_id = entry.id
    result = deliver(env.app, entry_id)
    return entry_id, result.status


def sent_folder(env: OutboxEnv) -> list[bytes]:
    conn = env.dovecot.session(env.imap_user)
    conn.select('"Sent"', readonly=True)
    _, data = conn.uid("FETCH", "1:*", "(BODY.PEEK[])")
    return [item[1] for item in data if isinstance(item, tuple)]


def test_a_send_arrives_lands_in_sent_and_on_the_timeline_at_once(env: OutboxEnv) -> None:
    entry_id, status = send(
        env,
        bcc=["boss@acme.example"],
        record=f"case:{env.case_id}",
        html="<p>Hello <b>Jo</b></p>",
        attachments=[FileAttachment("quote.pdf", "application/pdf", b"%PDF-1.4 quote")],
    )
    assert status == "sent"
    (got,) = env.smtp.messages
    assert sorted(got.rcpt_tos) == ["boss@acme.example", "jo@client.example"]
    wire = message_from_bytes(got.data, policy=policy.default)
    assert wire["Bcc"] is None, "Bcc must not reach the recipients"
    assert wire["Subject"] == f"Your quote [Case #{env.case_id}]"
    (copy,) = sent_folder(env)
    kept = message_from_bytes(copy, policy=policy.default)
    assert kept["Message-ID"] == wire["Message-ID"] and kept["Bcc"] == "boss@acme.example"
    assert env.dovecot.flags(env.imap_user, "Sent") == {1: {"\\Seen"}}
    with env.app.sessions() as session:
        entry = session.get(OutboxEntry, entry_id)
        assert entry is not None and entry.sent_folder == "Sent" and entry.raw is None
        records = list(session.scalars(select(Record).where(Record.id.in_([env.contact_id]))))
        (item,) = timeline_entries(session, records=records)
        assert item.direction == "outbound" and item.message_id == entry.message_id
        assert item.reasons[f"case:{env.case_id}"] == "manual"
        assert item.mailboxes == [env.mailbox_id]


def test_the_next_sync_recognises_the_sent_message(env: OutboxEnv) -> None:
    send(env)
    report = sync_mailbox(env.app, env.mailbox_id)
    assert report.error is None
    with env.app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 1
        assert session.scalar(select(func.count()).select_from(MessageCopy)) == 1


def test_a_reply_threads_in_the_recipients_client(env: OutboxEnv) -> None:
    parent = (
        b"From: Jo Client <jo@client.example>\r\nTo: ann@acme.example\r\n"
        b"Subject: Widget question\r\nMessage-ID: <q-2@client.example>\r\n"
        b"References: <q-1@client.example>\r\nDate: Mon, 5 Jan 2026 09:30:00 +0000\r\n\r\nHi\r\n"
    )
    env.dovecot.append(env.imap_user, "INBOX", parent)
    assert sync_mailbox(env.app, env.mailbox_id).error is None
    send(env, subject="Widget question", reply_to_message="<q-2@client.example>")
    got = message_from_bytes(env.smtp.messages[0].data, policy=policy.default)
    assert got["In-Reply-To"] == "<q-2@client.example>"
    assert got["References"] == "<q-1@client.example> <q-2@client.example>"
    assert got["Subject"] == "Re: Widget question"


@pytest.mark.parametrize(
    "fields",
    [
        {"subject": "Hello\r\nBcc: victim@client.example"},
        {"to": ["jo@client.example\r\nBcc: victim@client.example"]},
        {"to": ["Jo\nBcc: victim@client.example <jo@client.example>"]},
        {"cc": ["jo@client.example, victim@client.example"]},
        {"to": ["not an address"]},
    ],
)
def test_header_injection_is_refused_and_nothing_is_queued(
    env: OutboxEnv, fields: dict[str, object]
) -> None:
    with pytest.raises(BadInput):
        send(env, **fields)
    assert env.smtp.messages == []
    with env.app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(OutboxEntry)) == 0


def test_a_body_cannot_smuggle_a_second_message(env: OutboxEnv) -> None:
    text = (
        "Hi\r\n.\r\nMAIL FROM:<evil@attacker.example>\r\nRCPT TO:<victim@client.example>\r\n"
        "DATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\nbare\n.\nCR\r.\rend\n"
    )
    send(env, text=text)
    (got,) = env.smtp.messages
    assert got.rcpt_tos == ["jo@client.example"]
    body = message_from_bytes(got.data, policy=policy.default).get_body().get_content()
    assert "MAIL FROM:<evil@attacker.example>" in body and body.rstrip().endswith("end")


def test_a_refused_recipient_fails_with_the_reason_and_a_busy_one_is_retried(
    env: OutboxEnv,
) -> None:
    failed_id, status = send(env, to=["reject@client.example"])
    assert status == "failed"
    later_id, status = send(env, to=["defer@client.example"])
    assert status == "queued"
    with env.app.sessions() as session:
        failed = session.get(OutboxEntry, failed_id)
        assert failed is not None and "reject@client.example" in (failed.last_error or "")
        later = session.get(OutboxEntry, later_id)
        assert later is not None and later.next_attempt_at is not None
        retry_at = later.next_attempt_at
    assert process_due(env.app) == []  # not due yet
    from mailroom.db.times import as_utc

    results = process_due(env.app, now=as_utc(retry_at))
    assert [(r.entry_id, r.status) for r in results] == [(later_id, "queued")]
    assert env.smtp.messages == []


def test_starttls_is_required_when_configured(
    sqlite_app: App,
    dovecot: DovecotServer,
    imap_user: tuple[str, str],
    smtp: SmtpTestServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = make_outbox_env(sqlite_app, dovecot, imap_user, smtp, monkeypatch, port="plain")
    entry_id, status = send(env)
    assert status == "failed" and smtp.messages == []
    with env.app.sessions() as session:
        entry = session.get(OutboxEntry, entry_id)
        assert entry is not None and entry.error_kind == "tls"


def test_gmail_files_its_own_sent_copy_so_none_is_appended(
    sqlite_app: App,
    dovecot: DovecotServer,
    imap_user: tuple[str, str],
    smtp: SmtpTestServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = make_outbox_env(sqlite_app, dovecot, imap_user, smtp, monkeypatch, preset="gmail")
    entry_id, status = send(env)
    assert status == "sent" and len(smtp.messages) == 1
    assert sent_folder(env) == []
    with env.app.sessions() as session:
        entry = session.get(OutboxEntry, entry_id)
        assert entry is not None and entry.stored_message_id is not None
        assert "files its own Sent copy" in (entry.copy_note or "")
        assert session.scalar(select(func.count()).select_from(MessageCopy)) == 0


def test_the_smtp_password_is_stored_encrypted_for_its_role(env: OutboxEnv) -> None:
    with env.app.sessions() as session:
        row = session.scalar(select(MailboxSmtp))
        assert row is not None and row.secret is not None
        assert env.smtp.password.encode() not in row.secret
        assert (
            env.app.secrets.decrypt(row.secret, context=mailbox_context(env.mailbox_id, "smtp"))
            == env.smtp.password
        )
        with pytest.raises(Exception, match="could not be decrypted"):
            env.app.secrets.decrypt(row.secret, context=mailbox_context(env.mailbox_id))


def test_attachments_arrive_intact(env: OutboxEnv, tmp_path: Path) -> None:
    payload = bytes(range(256)) * 40
    send(env, attachments=[FileAttachment("data.bin", "application/octet-stream", payload)])
    got = message_from_bytes(env.smtp.messages[0].data, policy=policy.default)
    (part,) = list(got.iter_attachments())
    assert part.get_filename() == "data.bin" and part.get_content() == payload


def test_the_smtp_settings_can_be_checked_without_sending(env: OutboxEnv) -> None:
    from mailroom.mailboxes.store import get_mailbox
    from mailroom.outbox.smtp_settings import check_smtp, get_smtp

    with env.app.sessions() as session:
        mailbox = get_mailbox(session, env.mailbox_id)
        line = check_smtp(mailbox, get_smtp(session, mailbox), env.app.secrets)
    assert "logged in" in line and env.smtp.username in line and env.smtp.password not in line
    assert env.smtp.messages == []

"""POP3 against Dovecot's POP3 service: UIDL diff, leave on server, delete only if chosen."""

from __future__ import annotations

import poplib

import pytest
from sqlalchemy import select

from mailroom.app import App
from mailroom.connectors.base import Security, ServerSettings
from mailroom.connectors.pop3 import Pop3Mailbox
from mailroom.db.models import Mailbox, Message, MessageCopy
from mailroom.errors import AuthenticationError
from mailroom.sync.engine import sync_mailbox
from mailroom_testing.builders import build_message
from mailroom_testing.dovecot import DovecotServer
from tests.helpers.sync_support import connect_mailbox, message_count, seed


def pop_count(dovecot: DovecotServer, user: tuple[str, str]) -> int:
    conn = poplib.POP3(dovecot.host, dovecot.pop3_port, timeout=10)
    try:
        conn.user(user[0])
        conn.pass_(user[1])
        return int(conn.stat()[0])
    finally:
        conn.quit()


def test_pop3_is_incremental_and_leaves_mail_on_the_server(
    sqlite_app: App, dovecot: DovecotServer, imap_user: tuple[str, str]
) -> None:
    login = imap_user[0]
    seed(dovecot, login, "INBOX", 5)
    box = connect_mailbox(sqlite_app, dovecot, imap_user, protocol="pop3")

    first = sync_mailbox(sqlite_app, box, batch_size=2)
    assert first.error is None and (first.fetched, first.messages) == (5, 5)
    assert pop_count(dovecot, imap_user) == 5, "left on the server"

    seed(dovecot, login, "INBOX", 2, start=10)
    second = sync_mailbox(sqlite_app, box)
    assert (second.fetched, second.messages) == (2, 2)
    assert sync_mailbox(sqlite_app, box).fetched == 0
    with sqlite_app.sessions() as session:
        copies = session.scalars(select(MessageCopy)).all()
        mailbox = session.get(Mailbox, box)
        assert mailbox is not None and mailbox.status == "ok"
    assert len(copies) == 7 and all(c.server_id and c.gone_at is None for c in copies)
    assert message_count(sqlite_app) == 7


def test_pop3_marks_vanished_mail_gone_and_classifies_the_owners_mail_outbound(
    sqlite_app: App, dovecot: DovecotServer, imap_user: tuple[str, str]
) -> None:
    login = imap_user[0]
    dovecot.append(
        login,
        "INBOX",
        build_message(sender=f"{login}@acme.example", to="jo@client.example", subject="Offer"),
    )
    seed(dovecot, login, "INBOX", 2)
    box = connect_mailbox(sqlite_app, dovecot, imap_user, protocol="pop3")
    sync_mailbox(sqlite_app, box)
    with sqlite_app.sessions() as session:
        directions = dict(session.execute(select(Message.subject, Message.direction)).all())
    assert directions == {"Offer": "outbound", "Message 0": "inbound", "Message 1": "inbound"}

    conn = dovecot.session(login)
    conn.select("INBOX")
    conn.store("1", "+FLAGS.SILENT", "(\\Deleted)")
    conn.expunge()
    conn.close()
    report = sync_mailbox(sqlite_app, box)
    assert report.gone == 1
    with sqlite_app.sessions() as session:
        gone = session.scalars(select(MessageCopy).where(MessageCopy.gone_at.is_not(None))).all()
    assert len(gone) == 1
    assert message_count(sqlite_app) == 3, "the CRM keeps what left the server"


def test_pop3_deletes_only_when_chosen_and_after_storing(
    sqlite_app: App, dovecot: DovecotServer, imap_user: tuple[str, str]
) -> None:
    seed(dovecot, imap_user[0], "INBOX", 4)
    box = connect_mailbox(sqlite_app, dovecot, imap_user, protocol="pop3", delete_after_fetch=True)
    report = sync_mailbox(sqlite_app, box, batch_size=3)
    assert report.error is None and report.messages == 4
    assert pop_count(dovecot, imap_user) == 0
    assert message_count(sqlite_app) == 4
    again = sync_mailbox(sqlite_app, box)
    assert again.error is None and again.fetched == 0 and again.gone == 4


def test_pop3_wrong_password_is_an_authentication_error_without_the_password(
    dovecot: DovecotServer, imap_user: tuple[str, str]
) -> None:
    wrong = "not-the-password-xyz"
    settings = ServerSettings(
        host=dovecot.host,
        port=dovecot.pop3s_port,
        username=imap_user[0],
        password=wrong,
        security=Security.SSL,
    )
    with pytest.raises(AuthenticationError) as caught:
        Pop3Mailbox.connect(settings, ssl_context=dovecot.ssl_context())
    assert wrong not in str(caught.value)
    plain = ServerSettings(
        host=dovecot.host,
        port=dovecot.pop3_port,
        username=imap_user[0],
        password=imap_user[1],
        security=Security.STARTTLS,
    )
    with Pop3Mailbox.connect(plain, ssl_context=dovecot.ssl_context()) as box:
        assert box.listing() == []

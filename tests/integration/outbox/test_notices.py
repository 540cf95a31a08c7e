"""Notices from the company's notice mailbox: once per key, through a real SMTP server."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest
from sqlalchemy import func, select

from mailroom.app import App
from mailroom.crm.companies import add_company, add_user
from mailroom.db.engine import transaction
from mailroom.db.outbox_models import OutboxEntry
from mailroom.errors import BadInput, NotFound
from mailroom.mailboxes.store import add_mailbox
from mailroom.outbox.delivery import process_due
from mailroom.outbox.notices import NoticeOutcome, send_notice
from mailroom.services.notices import current_notice_mailbox_id, set_notice_mailbox
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


def notify(env: OutboxEnv, key: str) -> NoticeOutcome:
    with transaction(env.app.sessions) as session:
        return send_notice(
            session,
            company_id=1,
            key=key,
            to=["Ann Seller <ann@acme.example>"],
            subject="Mailbox 1 needs you to sign in again",
            text="Open Mailroom and press Reconnect.\n",
        )


def choose(env: OutboxEnv, mailbox_id: int | None) -> None:
    with transaction(env.app.sessions) as session:
        set_notice_mailbox(session=session, company_id=1, mailbox_id=mailbox_id)


def test_without_a_notice_mailbox_nothing_is_queued(env: OutboxEnv) -> None:
    assert notify(env, "oauth_revoked:1:2026-12-01") is NoticeOutcome.NO_MAILBOX
    with env.app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(OutboxEntry)) == 0


def test_a_notice_is_sent_once_per_key_from_the_chosen_mailbox(env: OutboxEnv) -> None:
    choose(env, env.mailbox_id)
    assert notify(env, "oauth_revoked:1:2026-12-01") is NoticeOutcome.QUEUED
    assert notify(env, "oauth_revoked:1:2026-12-01") is NoticeOutcome.ALREADY_SENT
    assert [r.status for r in process_due(env.app)] == ["sent"]
    (got,) = env.smtp.messages
    wire = message_from_bytes(got.data, policy=policy.default)
    assert got.rcpt_tos == ["ann@acme.example"]
    assert wire["Subject"] == "Mailbox 1 needs you to sign in again"
    assert notify(env, "oauth_revoked:1:2026-12-02") is NoticeOutcome.QUEUED


def test_a_disabled_notice_mailbox_sends_nothing(env: OutboxEnv) -> None:
    choose(env, env.mailbox_id)
    with transaction(env.app.sessions) as session:
        from mailroom.db.models import Mailbox

        box = session.get(Mailbox, env.mailbox_id)
        assert box is not None
        box.enabled = False
    assert notify(env, "tasks:1:2026-12-01") is NoticeOutcome.NO_MAILBOX


def test_only_a_mailbox_of_the_company_that_can_send_is_accepted(
    env: OutboxEnv, dovecot: DovecotServer, imap_user: tuple[str, str]
) -> None:
    with transaction(env.app.sessions) as session:
        other = add_company(session, name="Other", domains=["other.example"])
        bob = add_user(session, company=other, email="bob@other.example")
        elsewhere = add_mailbox(
            session,
            env.app.secrets,
            user=bob,
            host=dovecot.host,
            port=dovecot.imaps_port,
            username=imap_user[0],
            password=imap_user[1],
        ).id
    with pytest.raises(NotFound):
        choose(env, elsewhere)
    with transaction(env.app.sessions) as session:
        set_notice_mailbox(session=session, company_id=2, mailbox_id=None)
        with pytest.raises(BadInput, match="no SMTP settings"):
            set_notice_mailbox(session=session, company_id=2, mailbox_id=elsewhere)
    choose(env, env.mailbox_id)
    choose(env, None)
    with env.app.sessions() as session:
        assert current_notice_mailbox_id(session=session, company_id=1) is None

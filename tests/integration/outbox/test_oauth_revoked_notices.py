"""The daily reminder for a mailbox whose OAuth grant died, through the real aiosmtpd: one
mail a day per mailbox to its owner and the company's admins, until it is fixed; never a
failure count toward auto-disable. And the mail an admin's sign-in request sends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy

import pytest

from mailroom.app import App
from mailroom.crm.access import viewer_for
from mailroom.crm.companies import add_user
from mailroom.db.engine import transaction
from mailroom.db.models import Company, Mailbox
from mailroom.errors import OAuthRevoked
from mailroom.mailboxes.status import reenable
from mailroom.mailboxes.store import add_mailbox
from mailroom.outbox.delivery import process_due
from mailroom.outbox.notices import NoticeOutcome
from mailroom.services.notices import set_notice_mailbox
from mailroom.services.oauth_notices import RevokedNotices, notify_revoked
from mailroom.services.oauth_web import request_sign_in
from mailroom.sync.health import record_failure
from mailroom_testing.dovecot import DovecotServer
from tests.conftest_smtp import OutboxEnv, SmtpTestServer, make_outbox_env

DAY1 = (datetime.now(UTC) - timedelta(days=5)).replace(hour=9, minute=0)  # all due now


@pytest.fixture
def env(
    any_app: App,
    dovecot: DovecotServer,
    imap_user: tuple[str, str],
    smtp: SmtpTestServer,
    monkeypatch: pytest.MonkeyPatch,
) -> OutboxEnv:
    """On SQLite and on PostgreSQL: Ann's mailbox sends the company's notices."""
    found = make_outbox_env(any_app, dovecot, imap_user, smtp, monkeypatch)
    with transaction(found.app.sessions) as session:
        set_notice_mailbox(session=session, company_id=1, mailbox_id=found.mailbox_id)
    return found


def revoked_mailbox(app: App) -> int:
    """Bob's mailbox, whose provider answered invalid_grant (as sync records it); an admin
    (Chris) in the same company."""
    with transaction(app.sessions) as session:
        company = session.get(Company, 1)
        assert company is not None
        add_user(session, company=company, email="chris@acme.example", admin=True)
        bob = add_user(session, company=company, email="bob@acme.example")
        box = add_mailbox(
            session, app.secrets, user=bob, host="imap.acme.example", port=993, password="x"
        )
        record_failure(
            session,
            box,
            OAuthRevoked("The provider refused the sign-in (invalid_grant)", hint="Sign in again."),
            now=DAY1,
        )
        return box.id


def test_a_revoked_mailbox_mails_its_owner_and_the_admins_once_a_day_until_fixed(
    env: OutboxEnv,
) -> None:
    box = revoked_mailbox(env.app)
    assert notify_revoked(env.app, now=DAY1) == {box: NoticeOutcome.QUEUED}
    assert notify_revoked(env.app, now=DAY1 + timedelta(hours=5)) == {
        box: NoticeOutcome.ALREADY_SENT
    }
    assert [r.status for r in process_due(env.app)] == ["sent"]
    (first,) = env.smtp.messages
    assert sorted(first.rcpt_tos) == ["bob@acme.example", "chris@acme.example"]
    wire = message_from_bytes(first.data, policy=policy.default)
    assert wire["Subject"] == "Mailroom: sign in again to keep syncing bob@acme.example"
    body = wire.get_body(("plain",))
    assert body is not None
    assert f"{env.app.settings.public_url}/mailboxes" in body.get_content()

    assert notify_revoked(env.app, now=DAY1 + timedelta(days=1)) == {box: NoticeOutcome.QUEUED}
    assert [r.status for r in process_due(env.app)] == ["sent"]
    assert len(env.smtp.messages) == 2

    with env.app.sessions() as session:
        row = session.get(Mailbox, box)
        assert row is not None
        assert (row.auth_failure_count, row.failure_count) == (0, 1)  # notices count nothing

    with transaction(env.app.sessions) as session:  # signed in again (reconnect)
        row = session.get(Mailbox, box)
        assert row is not None
        reenable(row)
    assert notify_revoked(env.app, now=DAY1 + timedelta(days=2)) == {}


def test_the_serve_loop_ticks_the_reminder(env: OutboxEnv) -> None:
    box = revoked_mailbox(env.app)
    RevokedNotices(env.app, interval=3600).tick()  # what `serve`'s thread calls
    assert notify_revoked(env.app) == {box: NoticeOutcome.ALREADY_SENT}
    assert [r.status for r in process_due(env.app)] == ["sent"]


def test_an_admins_sign_in_request_mails_the_user_through_the_notice_mailbox(
    env: OutboxEnv,
) -> None:
    with transaction(env.app.sessions) as session:
        company = session.get(Company, 1)
        assert company is not None
        chris = add_user(session, company=company, email="chris@acme.example", admin=True)
        add_user(session, company=company, email="bob@acme.example")
        admin = viewer_for(session, chris)
    with env.app.sessions() as session:
        request_sign_in(
            session=session,
            app=env.app,
            viewer=admin,
            user_email="Bob@acme.example",
            provider="microsoft",
        )
    assert [r.status for r in process_due(env.app)] == ["sent"]
    (got,) = env.smtp.messages
    assert got.rcpt_tos == ["bob@acme.example"]
    wire = message_from_bytes(got.data, policy=policy.default)
    assert wire["Subject"] == "Mailroom: please sign in with Microsoft"
    body = wire.get_body(("plain",))
    assert body is not None and "chris@acme.example asked you" in body.get_content()

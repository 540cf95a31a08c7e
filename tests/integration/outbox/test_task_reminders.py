"""The daily reminder of due tasks: one mail per assignee per day from the notice mailbox,
through the real SMTP server, listing exactly the open tasks due that day or before."""

from __future__ import annotations

from datetime import date, timedelta
from email import message_from_bytes, policy

import pytest
from sqlalchemy import select

from mailroom.app import App
from mailroom.crm.notes import add_task
from mailroom.db.engine import transaction
from mailroom.db.models import Record, User
from mailroom.outbox.delivery import process_due
from mailroom.outbox.notices import NoticeOutcome
from mailroom.services.notices import set_notice_mailbox
from mailroom.services.task_reminders import send_task_reminders
from mailroom_testing.dovecot import DovecotServer
from tests.conftest_smtp import OutboxEnv, SmtpTestServer, make_outbox_env

DAY = date(2026, 12, 1)


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


def seed_tasks(env: OutboxEnv) -> None:
    with transaction(env.app.sessions) as session:
        ann = session.scalar(select(User).where(User.email == "ann@acme.example"))
        contact = session.get(Record, env.contact_id)
        assert ann is not None and contact is not None
        for title, due in (
            ("Chase the signature", DAY - timedelta(days=2)),
            ("Send the quote", DAY),
            ("Plan the visit", DAY + timedelta(days=1)),
        ):
            add_task(
                session,
                record=contact,
                title=title,
                due=due,
                assignee_id=ann.id,
                created_by=ann.id,
                message_id=None,
            )
        done = add_task(
            session,
            record=contact,
            title="Already done",
            due=DAY - timedelta(days=1),
            assignee_id=ann.id,
            created_by=ann.id,
            message_id=None,
        )
        done.done = True
        set_notice_mailbox(session=session, company_id=1, mailbox_id=env.mailbox_id)


def test_due_tasks_are_mailed_once_a_day_to_their_assignee(env: OutboxEnv) -> None:
    seed_tasks(env)
    first = send_task_reminders(env.app, day=DAY)
    assert list(first.values()) == [NoticeOutcome.QUEUED]
    assert list(send_task_reminders(env.app, day=DAY).values()) == [NoticeOutcome.ALREADY_SENT]
    assert [r.status for r in process_due(env.app)] == ["sent"]
    (got,) = env.smtp.messages
    assert got.rcpt_tos == ["ann@acme.example"]
    wire = message_from_bytes(got.data, policy=policy.default)
    assert wire["Subject"] == "2 tasks due"
    text = wire.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Chase the signature — Jo Client, due 2026-11-29 (overdue)" in text
    assert "Send the quote — Jo Client, due 2026-12-01" in text
    assert "Plan the visit" not in text and "Already done" not in text
    assert f"{env.app.settings.public_url}/tasks" in text
    assert process_due(env.app) == []  # nothing more was queued
    next_day = send_task_reminders(env.app, day=DAY + timedelta(days=1))
    assert list(next_day.values()) == [NoticeOutcome.QUEUED]
    assert [r.status for r in process_due(env.app)] == ["sent"]
    assert message_from_bytes(env.smtp.messages[-1].data)["Subject"] == "3 tasks due"


def test_without_a_notice_mailbox_no_reminder_is_queued(env: OutboxEnv) -> None:
    seed_tasks(env)
    with transaction(env.app.sessions) as session:
        set_notice_mailbox(session=session, company_id=1, mailbox_id=None)
    assert send_task_reminders(env.app, day=DAY) == {}
    assert process_due(env.app) == []
    assert env.smtp.messages == []

"""Mailbox health against the real Dovecot: failed after 10 auth failures or 48 h,
re-enabling by editing credentials, the error log CLI, the company limit.
Error kinds, hints, backoff and stale claims without a server: tests/unit/sync/test_health.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from mailroom.app import App
from mailroom.db.engine import transaction
from mailroom.db.models import Mailbox, MailboxError
from mailroom.errors import (
    AuthenticationError,
)
from mailroom.sync.engine import sync_mailbox
from mailroom_testing.dovecot import DovecotServer
from tests.helpers.mailbox_state import run_cli
from tests.helpers.sync_support import connect_mailbox, seed


def test_ten_auth_failures_fail_the_mailbox_and_editing_the_password_revives_it(
    sqlite_app: App,
    dovecot: DovecotServer,
    imap_user: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    login, password = imap_user
    seed(dovecot, login, "INBOX", 2)
    box = connect_mailbox(sqlite_app, dovecot, (login, "wrong-password-123"))
    report = sync_mailbox(sqlite_app, box)
    assert isinstance(report.error, AuthenticationError)
    with transaction(sqlite_app.sessions) as session:
        mailbox = session.get(Mailbox, box)
        assert mailbox is not None
        assert (mailbox.status, mailbox.error_kind, mailbox.auth_failure_count) == (
            "error",
            "auth_failed",
            1,
        )
        retry = mailbox.next_attempt_at
        assert retry is not None and retry.replace(tzinfo=UTC) > datetime.now(UTC)
        mailbox.auth_failure_count = 9
    sync_mailbox(sqlite_app, box)
    with sqlite_app.sessions() as session:
        mailbox = session.get(Mailbox, box)
        assert mailbox is not None and mailbox.status == "failed"
    assert sync_mailbox(sqlite_app, box).skipped == "failed"

    capsys.readouterr()
    assert run_cli(sqlite_app, monkeypatch, "mailbox", "errors", str(box), "--json") == 0
    log = json.loads(capsys.readouterr().out)
    assert log["status"] == "failed" and [e["kind"] for e in log["errors"]] == ["auth_failed"] * 2
    assert "mailbox edit" in log["errors"][0]["hint"] and log["errors"][0]["user_fixable"]
    assert "wrong-password-123" not in json.dumps(log)

    code = run_cli(
        sqlite_app, monkeypatch, "mailbox", "edit", str(box), "--password-stdin", stdin=password
    )
    assert code == 0
    assert run_cli(sqlite_app, monkeypatch, "sync", "--once") == 0
    with sqlite_app.sessions() as session:
        mailbox = session.get(Mailbox, box)
        assert mailbox is not None
        assert (mailbox.status, mailbox.auth_failure_count, mailbox.progress_done) == ("ok", 0, 2)


def test_no_success_for_48_hours_fails_the_mailbox(
    sqlite_app: App, dovecot: DovecotServer, imap_user: tuple[str, str]
) -> None:
    box = connect_mailbox(sqlite_app, dovecot, imap_user)
    with transaction(sqlite_app.sessions) as session:
        mailbox = session.get(Mailbox, box)
        assert mailbox is not None
        mailbox.port = 1  # nothing listens on port 1: a transient network error
        mailbox.failing_since = datetime.now(UTC) - timedelta(hours=47)
    sync_mailbox(sqlite_app, box)
    with transaction(sqlite_app.sessions) as session:
        mailbox = session.get(Mailbox, box)
        assert mailbox is not None
        assert (mailbox.status, mailbox.error_kind) == ("error", "host_unreachable")
        mailbox.failing_since = datetime.now(UTC) - timedelta(hours=49)
    sync_mailbox(sqlite_app, box, force=True)
    with sqlite_app.sessions() as session:
        mailbox = session.get(Mailbox, box)
        assert mailbox is not None and mailbox.status == "failed"
        kinds = session.scalars(select(MailboxError.kind)).all()
    assert set(kinds) == {"host_unreachable"}


def test_mailboxes_beyond_the_company_limit_wait_as_pending_until_a_slot_frees(
    sqlite_app: App,
    dovecot: DovecotServer,
    imap_user: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = connect_mailbox(sqlite_app, dovecot, imap_user, limit=1)
    with transaction(sqlite_app.sessions) as session:
        mailbox = session.get(Mailbox, first)
        assert mailbox is not None
        second_box = Mailbox(
            company_id=mailbox.company_id,
            user_id=mailbox.user_id,
            address=mailbox.address,
            host=mailbox.host,
            port=mailbox.port,
            username=mailbox.username,
            secret=b"",
            allow_self_signed=True,
        )
        session.add(second_box)
        session.flush()
        second_box.secret = sqlite_app.secrets.encrypt(
            imap_user[1], context=f"mailbox:{second_box.id}:password"
        )
        second = second_box.id
    assert sync_mailbox(sqlite_app, first).error is None
    assert sync_mailbox(sqlite_app, second).skipped == "waiting"
    with sqlite_app.sessions() as session:
        waiting = session.get(Mailbox, second)
        assert waiting is not None and (waiting.status, waiting.error_kind) == ("pending", "limit")
    assert run_cli(sqlite_app, monkeypatch, "mailbox", "disable", str(first)) == 0
    report = sync_mailbox(sqlite_app, second)
    assert report.skipped is None and report.error is None

"""Mailbox health: error kinds and hints, backoff, failed after 10 auth failures or 48 h,
re-enabling by editing credentials, the error log CLI, the company limit, stale claims."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from mailroom.app import App
from mailroom.db.engine import transaction
from mailroom.db.models import Mailbox, MailboxError
from mailroom.errors import (
    AuthenticationError,
    NetworkError,
    ProtocolError,
    TLSError,
)
from mailroom.sync import claims
from mailroom.sync.engine import sync_mailbox
from mailroom.sync.health import BackoffPolicy, diagnose
from mailroom.sync.scheduler import PollScheduler
from mailroom_testing.dovecot import DovecotServer
from tests.helpers.sync_support import connect_mailbox, run_cli, seed, setup_company


@pytest.mark.parametrize(
    ("error", "kind", "wait"),
    [
        (ProtocolError("rejected UID FETCH: [THROTTLED] Too many requests"), "throttled", None),
        (
            AuthenticationError(
                "refused (Request is throttled. Suggested Backoff Time: 299961 milliseconds)"
            ),
            "throttled",
            299.961,
        ),
        (
            AuthenticationError("refused ([ALERT] Application-specific password required)"),
            "app_password_required",
            None,
        ),
        (
            AuthenticationError("refused ([ALERT] Your account is not enabled for IMAP use.)"),
            "imap_disabled",
            None,
        ),
        (ProtocolError("APPEND failed: [OVERQUOTA] Quota exceeded"), "over_quota", None),
        (AuthenticationError("refused the user name or password"), "auth_failed", None),
        (TLSError("sent a certificate that was rejected"), "tls_rejected", None),
        (NetworkError("The IMAP server x:993 refused the connection"), "host_unreachable", None),
        (NetworkError("dropped the connection during UID FETCH"), "connection_lost", None),
        (ProtocolError("rejected EXAMINE: NO Mailbox doesn't exist"), "server_error", None),
    ],
)
def test_each_error_kind_has_a_fix_hint(error: Exception, kind: str, wait: float | None) -> None:
    found = diagnose(error)  # type: ignore[arg-type]
    assert (found.kind, found.retry_after) == (kind, wait)
    assert found.hint
    assert found.auth_failure == (kind in ("auth_failed", "app_password_required"))


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    policy = BackoffPolicy(base=60, cap=3600)
    rng = random.Random(7)
    for failures, low, high in [(1, 30, 60), (2, 60, 120), (4, 240, 480), (20, 1800, 3600)]:
        delays = {policy.delay(failures, rng=rng) for _ in range(20)}
        assert all(low <= d <= high for d in delays) and len(delays) > 1


@pytest.mark.dovecot
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


@pytest.mark.dovecot
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


@pytest.mark.dovecot
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


def test_a_stale_claim_is_restarted_and_a_live_one_is_respected(sqlite_app: App) -> None:
    (box,) = setup_company(sqlite_app)
    now = datetime.now(UTC)
    scheduler = PollScheduler(sqlite_app, interval=300, idle=False)
    cases = [
        (f"{claims.HOST}:{2**22 + 7}:dead", now, True),  # a process of this host that is gone
        ("elsewhere:123:abc", now - timedelta(hours=1), True),  # heartbeat past the timeout
        ("elsewhere:123:abc", now, False),  # another machine, beating: hands off
    ]
    for owner, beat, stale in cases:
        with transaction(sqlite_app.sessions) as session:
            mailbox = session.get(Mailbox, box)
            assert mailbox is not None
            mailbox.status, mailbox.sync_owner, mailbox.heartbeat_at = "syncing", owner, beat
        assert ((box, False) in scheduler.due(now)) is stale, owner
        with sqlite_app.sessions() as session:
            mailbox = session.get(Mailbox, box)
            assert mailbox is not None
            assert claims.is_stale(mailbox, now=now) is stale


def test_owner_liveness_is_read_from_the_owner_string() -> None:
    assert claims.owner_alive("elsewhere:1:x")
    assert not claims.owner_alive(f"{claims.HOST}:{2**22 + 9}:x")

"""Mailbox health without a server: error kinds and hints, backoff, stale claims.
Failures against the real Dovecot: tests/integration/sync/test_health.py.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from mailroom.app import App
from mailroom.db.engine import transaction
from mailroom.db.models import Mailbox
from mailroom.errors import (
    AuthenticationError,
    NetworkError,
    ProtocolError,
    TLSError,
)
from mailroom.sync import claims
from mailroom.sync.health import BackoffPolicy, diagnose
from mailroom.sync.scheduler import PollScheduler
from tests.helpers.sync_support import setup_company


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
        (
            ProtocolError(
                "rejected UID FETCH: [OVERQUOTA] Account exceeded command or bandwidth limits."
            ),
            "bandwidth_limit",
            None,
        ),
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


def test_a_revoked_oauth_grant_is_oauth_revoked_not_an_auth_failure_and_waits_a_day() -> None:
    from mailroom.errors import OAuthRevoked

    found = diagnose(OAuthRevoked("The provider refused the sign-in (invalid_grant: password)"))
    assert found.kind == "oauth_revoked" and not found.auth_failure and found.user_fixable
    assert found.hint.startswith("Sign in again: mailroom mailbox reconnect ID")
    assert found.retry_after is not None and found.retry_after >= 12 * 3600


def test_gmails_bandwidth_limit_pauses_longer_each_time_and_never_counts_as_failing(
    sqlite_app: App,
) -> None:
    from mailroom.sync.health import PAUSE_MOST, record_failure

    (box,) = setup_company(sqlite_app)
    error = ProtocolError("rejected: [OVERQUOTA] Account exceeded command or bandwidth limits.")
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    waits = []
    with transaction(sqlite_app.sessions) as session:
        mailbox = session.get(Mailbox, box)
        assert mailbox is not None
        for _ in range(8):
            record_failure(session, mailbox, error, now=now)
            assert mailbox.next_attempt_at is not None
            waits.append((mailbox.next_attempt_at - now).total_seconds())
        assert mailbox.status == "paused" and mailbox.error_kind == "bandwidth_limit"
        assert mailbox.auth_failure_count == 0 and mailbox.failing_since is None
        assert mailbox.last_error is not None and mailbox.last_error.startswith("Paused until")
    assert waits[:3] == [3600.0, 7200.0, 14400.0]
    assert waits[-1] == PAUSE_MOST and waits == sorted(waits)


def test_every_fix_hint_names_the_real_mailbox_id_never_a_literal_ID(sqlite_app: App) -> None:
    """Issue 13: the fix said `mailroom mailbox edit ID` with a literal "ID"."""
    from mailroom.errors import ConfigError, NotFound, OAuthRevoked
    from mailroom.services.mailboxes import error_log, last_hint
    from mailroom.sync.health import HINTS, name_mailbox, record_failure

    for kind, hint in HINTS.items():
        named = name_mailbox(hint, 42)
        assert " ID" not in named.replace("Entra ID", ""), kind
        if "mailroom " in hint:
            assert "mailroom " in named and " 42" in named, kind
    errors = [
        AuthenticationError("refused the user name or password"),
        OAuthRevoked("invalid_grant"),
        NotFound("The server has no folder 'X'.", hint="Check with `mailroom mailbox test ID`."),
        ConfigError("cannot decrypt"),
        ProtocolError("NO [UNAVAILABLE] IMAP access is disabled for this account"),
    ]
    (box,) = setup_company(sqlite_app)
    with transaction(sqlite_app.sessions) as session:
        mailbox = session.get(Mailbox, box)
        assert mailbox is not None
        for error in errors:
            found = record_failure(session, mailbox, error)  # type: ignore[arg-type]
            assert f" {box}" in found.hint and " ID" not in found.hint, found.hint
            assert mailbox.error_hint == found.hint
        # A hint stored before hints named their mailbox is named when shown.
        mailbox.error_hint = HINTS["auth_failed"]
        assert last_hint(session, mailbox) == name_mailbox(HINTS["auth_failed"], box)
        assert f"mailroom mailbox edit {box} --password-stdin" in str(last_hint(session, mailbox))
    with sqlite_app.sessions() as session:
        hints = [e["hint"] for e in error_log(session=session, mailbox_id=box)]
    assert len(hints) == len(errors) and all(" ID" not in h for h in hints), hints

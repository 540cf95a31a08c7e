"""Mailbox health: what went wrong, how to fix it, when to try again, when to give up.

Every failed sync is classified into one stable error kind with a fix hint for the admin,
logged (`MailboxError`: time, kind, message, hint) and turned into a status:

(the moves themselves are `mailroom.mailboxes.status`; this module decides when):

```
pending ──claim──▶ syncing ──success──▶ ok ──(next poll / IDLE / sync --now)──▶ syncing
                      │ failure
                      ▼
                    error ──(backoff elapsed)──▶ syncing …
                      │ 10 authentication failures in a row, or no success for 48 h
                      ▼
                    failed ──(credentials edited)──▶ pending
 any ──mailbox disabled──▶ disabled ──enabled──▶ pending
 syncing ──Gmail: over the daily download quota──▶ paused ──resume time──▶ syncing
```

Backoff is exponential with jitter (base * 2^(n-1), capped, times a random factor in
[0.5, 1]), so a thousand mailboxes on one failing server do not retry in lock-step. A
throttling answer — Gmail's `[THROTTLED]` (a Gmail IMAP extension response code),
Office 365's "Suggested Backoff Time: N milliseconds" — is never counted against the
credentials and the next attempt waits at least as long as the server asked. Only an
authentication failure counts towards `failed`; the counter resets on success and on a
credentials edit. A dead OAuth grant (`oauth_revoked`: the provider answered invalid_grant)
is no wrong password: it never counts, and is retried only after a day (a sign-in fixes
it, `mailroom mailbox reconnect ID`), never in a loop. The 48-hour clock (`failing_since`)
starts at the first failure after a success or an edit. No message here ever contains a
password (connectors scrub them).

Gmail's daily IMAP download limit (`[OVERQUOTA] Account exceeded command or bandwidth
limits`, about 2,500 MB a day; Google lifts the block within a day) is no failure either:
the mailbox is `paused` with the time it resumes (`next_attempt_at`: one hour, doubling on
each pause in a row, at most a day), counts toward neither auto-disable rule, and is not
synced before that time unless someone asks (`sync --now`). What was stored before the
quota ran out stays stored; the sync resumes at its cursors.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from mailroom.db.models import Mailbox, MailboxError
from mailroom.errors import (
    AuthenticationError,
    ConfigError,
    MailroomError,
    NetworkError,
    NotFound,
    OAuthRevoked,
    TLSError,
    UserError,
)
from mailroom.mailboxes.status import mark_failing, mark_ok, mark_paused

AUTH_FAILURES_TO_FAIL = 10
NO_SUCCESS_TO_FAIL = timedelta(hours=48)
EDIT_HINT = "`mailroom mailbox edit ID --password-stdin`"
REVOKED = "oauth_revoked"
REVOKED_HINT = "Sign in again: mailroom mailbox reconnect ID (or Reconnect on My mailboxes)"
REVOKED_RETRY = 24 * 3600.0  # a dead grant is not retried in a loop: it needs the user
BANDWIDTH = "bandwidth_limit"
PAUSE_FIRST = 3600.0  # Gmail's quota block: first pause, doubled on each pause in a row
PAUSE_MOST = 24 * 3600.0  # Google lifts the block within a day

HINTS = {
    "auth_failed": "The server refused the user name or password: enter the current password "
    f"with {EDIT_HINT} (with two-factor sign-in, use an app password).",
    "app_password_required": "The account uses two-factor sign-in: create an app password at "
    f"the provider and enter it with {EDIT_HINT}.",
    "imap_disabled": "IMAP access is turned off for this account: turn it on at the provider "
    "(Gmail: Settings → Forwarding and POP/IMAP; Microsoft 365: the admin enables IMAP for the "
    "mailbox), then run `mailroom sync --now ID`.",
    "tls_rejected": "The server's certificate or TLS setup was rejected: check the host name and "
    "--security (ssl on 993, starttls on 143); for a self-signed certificate use "
    "--allow-self-signed.",
    "host_unreachable": "The server could not be reached: check the host name, the port and the "
    "network. Mailroom retries by itself.",
    "connection_lost": "The server dropped the connection. Mailroom retries by itself.",
    "throttled": "The provider asked Mailroom to slow down. Mailroom waits as long as it asked "
    "and retries by itself; nothing to change.",
    "over_quota": "The mailbox is over its storage quota at the provider: free some space or "
    "raise the quota.",
    "server_error": "The server answered with an error. Mailroom retries by itself; if it "
    "persists, check the server's log.",
    "stalled": "A sync step ran past its time limit and was restarted.",
    "internal": "The sync stopped on an unexpected error (the log has the details). Mailroom "
    "retries by itself; if it persists, report it with that log.",
    "folder_missing": "A chosen folder no longer exists on the server: check the folder list "
    "with `mailroom mailbox test ID`.",
    "config": "The stored credentials cannot be used with this data dir's key: restore the key "
    f"or enter the password again with {EDIT_HINT}.",
    "oauth_revoked": REVOKED_HINT,
    BANDWIDTH: "Gmail's daily IMAP download limit for this account is used up (Google allows "
    "about 2,500 MB a day). Mailroom paused this mailbox and resumes by itself at the time "
    "shown; what was fetched is kept. Nothing to change (other IMAP clients on the account "
    "use the same limit).",
    "limit": "The company's mailbox limit is reached: this mailbox waits until a slot frees "
    "(disable another mailbox or raise the limit).",
}

# A hint is written once with `ID` for the mailbox; `name_mailbox` puts the real id in
# before the hint is stored or shown, so a user can run the command as it is.
_ID_PLACEHOLDER = re.compile(
    r"(mailroom (?:mailbox (?:edit|reconnect|test|quarantine|errors)|sync --now)) ID\b"
)


def name_mailbox(hint: str, mailbox_id: int | None) -> str:
    """The hint with its `mailroom … ID` commands naming mailbox `mailbox_id` (unchanged
    when the id is unknown)."""
    if mailbox_id is None:
        return hint
    return _ID_PLACEHOLDER.sub(lambda m: f"{m.group(1)} {mailbox_id}", hint)


_THROTTLE = re.compile(r"\[THROTTLED\]|suggested backoff time|request is throttled", re.I)
_BACKOFF_MS = re.compile(r"suggested backoff time:?\s*(\d+)\s*milli", re.I)
_BANDWIDTH = re.compile(r"exceeded command or bandwidth limits|bandwidth limit", re.I)
_QUOTA = re.compile(r"\[OVERQUOTA\]|over ?quota|quota exceeded|mailbox (is )?full", re.I)
_APP_PASSWORD = re.compile(
    r"application-specific password|app password|WebLoginRequired|log in via your web browser",
    re.I,
)
_IMAP_OFF = re.compile(
    r"not enabled for (IMAP|POP)|(IMAP|POP) access is disabled|(IMAP|POP3?) (is )?disabled"
    r"|authenticated but not connected",
    re.I,
)


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """What an error means for the mailbox: its kind, fix, and how the engine reacts."""

    kind: str
    hint: str
    user_fixable: bool
    auth_failure: bool = False
    retry_after: float | None = None  # seconds the server asked us to wait
    pause: bool = False  # a quota that lifts by itself: `paused`, no failure counted


def diagnose(exc: MailroomError, *, mailbox_id: int | None = None) -> Diagnosis:
    """Classify an error from a sync; the server's words come before the exception type.

    Throttling and quota answers can arrive as a refused LOGIN: they are checked first so
    that a throttled login never counts against the credentials. With `mailbox_id`, the
    hint's commands name that mailbox instead of `ID`.
    """
    found = _diagnose(exc)
    return replace(found, hint=name_mailbox(found.hint, mailbox_id))


def _diagnose(exc: MailroomError) -> Diagnosis:
    text = exc.message
    if isinstance(exc, OAuthRevoked):  # the provider's words may say anything
        return Diagnosis("oauth_revoked", REVOKED_HINT, True, retry_after=REVOKED_RETRY)
    if _BANDWIDTH.search(text):  # before throttling and storage quota: Gmail's [OVERQUOTA]
        return Diagnosis(BANDWIDTH, HINTS[BANDWIDTH], False, pause=True)
    if _THROTTLE.search(text):
        match = _BACKOFF_MS.search(text)
        wait = int(match.group(1)) / 1000 if match else None
        return Diagnosis("throttled", HINTS["throttled"], False, retry_after=wait)
    if _QUOTA.search(text):
        return Diagnosis("over_quota", HINTS["over_quota"], True)
    if _APP_PASSWORD.search(text):
        return Diagnosis("app_password_required", HINTS["app_password_required"], True, True)
    if _IMAP_OFF.search(text):
        return Diagnosis("imap_disabled", HINTS["imap_disabled"], True)
    if isinstance(exc, AuthenticationError):
        return Diagnosis("auth_failed", HINTS["auth_failed"], True, auth_failure=True)
    if isinstance(exc, TLSError):
        return Diagnosis("tls_rejected", HINTS["tls_rejected"], True)
    if exc.kind in ("stalled", "internal"):
        return Diagnosis(exc.kind, HINTS[exc.kind], False)
    if isinstance(exc, NetworkError):
        dropped = "dropped the connection" in text or "did not answer" in text
        kind = "connection_lost" if dropped else "host_unreachable"
        return Diagnosis(kind, HINTS[kind], False)
    if isinstance(exc, NotFound):
        return Diagnosis("folder_missing", exc.hint or HINTS["folder_missing"], True)
    if isinstance(exc, ConfigError):
        return Diagnosis("config", exc.hint or HINTS["config"], True)
    if isinstance(exc, UserError):
        return Diagnosis(exc.kind, exc.hint or "", True)
    return Diagnosis("server_error", exc.hint or HINTS["server_error"], False)


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Exponential backoff with jitter: base * 2^(failures-1), capped, * U(0.5, 1)."""

    base: float = 60.0
    cap: float = 6 * 3600.0

    def delay(self, failures: int, *, rng: random.Random | None = None) -> float:
        exp: float = self.base * float(2 ** max(0, min(failures, 30) - 1))
        factor: float = (rng or random).uniform(0.5, 1.0)
        return min(self.cap, exp) * factor


DEFAULT_BACKOFF = BackoffPolicy()


def record_failure(
    session: Session,
    mailbox: Mailbox,
    exc: MailroomError,
    *,
    now: datetime | None = None,
    policy: BackoffPolicy = DEFAULT_BACKOFF,
) -> Diagnosis:
    """Log the error, set the status and schedule the next attempt; returns the diagnosis."""
    now = now or datetime.now(UTC)
    found = diagnose(exc, mailbox_id=mailbox.id)
    if found.pause:
        _pause(session, mailbox, exc, found, now)
        return found
    mailbox.failure_count += 1
    if found.auth_failure:
        mailbox.auth_failure_count += 1
    wait = policy.delay(mailbox.failure_count)
    if found.retry_after is not None:
        wait = max(wait, found.retry_after)
    retry_at = now + timedelta(seconds=wait)
    if mailbox.failing_since is None:
        mailbox.failing_since = now
    since = _aware(mailbox.failing_since) or now
    gave_up = (
        mailbox.auth_failure_count >= AUTH_FAILURES_TO_FAIL or now - since > NO_SUCCESS_TO_FAIL
    )
    mark_failing(mailbox, gave_up=gave_up)
    mailbox.last_error = exc.message
    mailbox.error_kind = found.kind
    mailbox.error_hint = found.hint
    mailbox.next_attempt_at = None if gave_up else retry_at
    mailbox.sync_owner = None
    session.add(
        MailboxError(
            mailbox_id=mailbox.id,
            at=now,
            kind=found.kind,
            message=exc.message,
            hint=found.hint,
            user_fixable=found.user_fixable,
            retry_at=None if gave_up else retry_at,
        )
    )
    return found


def _pause(
    session: Session, mailbox: Mailbox, exc: MailroomError, found: Diagnosis, now: datetime
) -> None:
    """Over the provider's download quota: `paused` until a resume time, nothing counted
    toward auto-disable (neither the auth counter nor the 48-hour clock)."""
    pauses = mailbox.failure_count if mailbox.error_kind == found.kind else 0
    mailbox.failure_count = pauses + 1
    wait = min(PAUSE_MOST, PAUSE_FIRST * 2.0 ** min(pauses, 10))
    resume = now + timedelta(seconds=wait)
    mark_paused(mailbox)
    mailbox.last_error = f"Paused until {resume:%Y-%m-%d %H:%M} UTC: {exc.message}"
    mailbox.error_kind = found.kind
    mailbox.error_hint = found.hint
    mailbox.next_attempt_at = resume
    mailbox.sync_owner = None
    session.add(
        MailboxError(
            mailbox_id=mailbox.id,
            at=now,
            kind=found.kind,
            message=mailbox.last_error,
            hint=found.hint,
            user_fixable=False,
            retry_at=resume,
        )
    )


def record_success(mailbox: Mailbox, *, now: datetime | None = None) -> None:
    """A sync finished: status ok, counters and error cleared."""
    mark_ok(mailbox)
    mailbox.last_success_at = now or datetime.now(UTC)
    mailbox.last_error = mailbox.error_kind = mailbox.error_hint = None
    mailbox.failure_count = mailbox.auth_failure_count = 0
    mailbox.next_attempt_at = None
    mailbox.failing_since = None
    mailbox.sync_owner = None


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes for timezone=True columns: they are UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def aware(value: datetime | None) -> datetime | None:
    """Public form of `_aware` for the scheduler and the CLI."""
    return _aware(value)

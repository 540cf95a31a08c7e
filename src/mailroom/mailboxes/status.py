"""A mailbox's status: one enum, and the only functions that change it.

```
pending ──claim──▶ syncing ──success──▶ ok ──(next poll / IDLE / sync --now)──▶ syncing
                      │ failure
                      ▼
                    error ──(backoff elapsed)──▶ syncing …
                      │ too many authentication failures, or no success for 48 h
                      ▼
                    failed ──(credentials edited)──▶ pending
 any ──mailbox disabled──▶ disabled ──enabled──▶ pending
 syncing ──over the daily download quota (Gmail)──▶ paused ──resume time──▶ syncing
```

`MailboxStatus` is a `str` enum, so the stored column and every JSON answer keep the
same strings (`pending`, `syncing`, `ok`, `error`, `failed`, `disabled`, `paused`). Every write of
`Mailbox.status` in Mailroom goes through a function below; `sync.health` decides *when*
(backoff, the failure counters), these functions only make the move.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from mailroom.db.models import Mailbox


class MailboxStatus(StrEnum):
    """Where a mailbox stands; the values are the strings stored and shown."""

    PENDING = "pending"
    SYNCING = "syncing"
    OK = "ok"
    ERROR = "error"
    FAILED = "failed"
    DISABLED = "disabled"
    PAUSED = "paused"  # the provider's daily download quota is used up: resumes by itself


def reenable(mailbox: Mailbox) -> None:
    """Credentials (or settings) were edited, or it was enabled: forget failures, sync now."""
    mailbox.enabled = True
    mailbox.status = MailboxStatus.PENDING
    mailbox.failure_count = mailbox.auth_failure_count = 0
    mailbox.last_error = mailbox.error_kind = mailbox.error_hint = None
    mailbox.next_attempt_at = None
    mailbox.failing_since = None  # the 48-hour clock starts again
    mailbox.sync_requested_at = datetime.now(UTC)


def disable(mailbox: Mailbox) -> None:
    """Never sync this mailbox until it is enabled again."""
    mailbox.enabled = False
    mailbox.status = MailboxStatus.DISABLED
    mailbox.next_attempt_at = None


def mark_syncing(mailbox: Mailbox) -> None:
    """A sync of the mailbox has started (claimed by a process or started by a page)."""
    mailbox.status = MailboxStatus.SYNCING


def mark_ok(mailbox: Mailbox) -> None:
    """A sync finished well."""
    mailbox.status = MailboxStatus.OK


def mark_failing(mailbox: Mailbox, *, gave_up: bool) -> None:
    """A sync failed: `error` (retried after a backoff) or, when given up, `failed`."""
    mailbox.status = MailboxStatus.FAILED if gave_up else MailboxStatus.ERROR


def mark_paused(mailbox: Mailbox) -> None:
    """Over the provider's download quota (Gmail): no error, waits until `next_attempt_at`."""
    mailbox.status = MailboxStatus.PAUSED


def mark_idle(mailbox: Mailbox) -> None:
    """A sync was released without an outcome: `ok` if it ever succeeded, else `pending`."""
    mailbox.status = MailboxStatus.OK if mailbox.last_success_at else MailboxStatus.PENDING


def mark_waiting(mailbox: Mailbox) -> None:
    """The company's mailbox limit is reached: the mailbox waits (as `pending`) for a slot."""
    mailbox.status = MailboxStatus.PENDING

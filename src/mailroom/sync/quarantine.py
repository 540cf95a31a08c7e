"""Messages the server lists but the sync could not fetch: retried, then quarantined.

Invariant "nothing dropped silently" (docs/architecture.md), for the fetch itself: a UID
the server listed whose FETCH answer (POP3: RETR) was missing or could not be read
(`connectors.base.Unreadable`) is never taken for expunged. Its row here
(`QuarantinedMessage`) moves:

```
(fetch fails) ──▶ retrying ──fetched and stored──▶ (row deleted)
                     │ QUARANTINE_AFTER failed syncs in all
                     ▼
                 quarantined ──person: retry──▶ retrying (one more attempt)
                     │ person: dismiss
                     ▼
                 dismissed (the loss accepted; still listed)
 any ──the folder's UIDVALIDITY changed──▶ (row deleted: the UID means nothing now)
```

Cursors (sync/folders.py): a folder's cursor never passes a message that is neither
stored nor quarantined. While a message is `retrying` the forward cursor stays below it
and the backfill cursor above it (`CursorHold`); the messages after it are still fetched
and stored (ingestion is idempotent, so fetching them again later adds nothing). Each
attempt is recorded in the transaction of the batch it belongs to, with that batch's
cursor. A sync that leaves a message `retrying` ends in a mailbox error
(`MessagesNotFetched`, `server_error`), so the retry waits for the mailbox's backoff
(sync/health.py) like any other. A row the cursor already passed (a quarantined message
the person retried) is fetched again by UID at the next sync (`retrying_passed`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import ColumnElement, and_, delete, select
from sqlalchemy.orm import Session

from mailroom.connectors.base import Unreadable
from mailroom.connectors.limits import DEFAULT_LIMITS
from mailroom.db.models import QuarantinedMessage
from mailroom.errors import ProtocolError

QUARANTINE_AFTER = 3  # failed syncs before a message is quarantined
MAX_ERROR = 1000  # characters of the server's answer kept with a row


class QuarantineState(StrEnum):
    """Where a message that could not be fetched stands (QuarantinedMessage.state)."""

    RETRYING = "retrying"
    QUARANTINED = "quarantined"
    DISMISSED = "dismissed"


class MessagesNotFetched(ProtocolError):
    """The server listed messages the sync could not fetch; they are fetched again at the
    next sync (after the mailbox's backoff), then quarantined."""


@dataclass(frozen=True, slots=True)
class Place:
    """Where messages sit: one mailbox's folder under one UIDVALIDITY."""

    mailbox_id: int
    folder: str
    uidvalidity: int


def _at(place: Place) -> ColumnElement[bool]:
    return and_(
        QuarantinedMessage.mailbox_id == place.mailbox_id,
        QuarantinedMessage.folder == place.folder,
        QuarantinedMessage.uidvalidity == place.uidvalidity,
    )


def known(session: Session, place: Place) -> dict[int, str]:
    """UID → state of the place's rows (most folders have none: one indexed query)."""
    rows = session.execute(
        select(QuarantinedMessage.uid, QuarantinedMessage.state).where(_at(place))
    )
    return {uid: state for uid, state in rows}


def has_retrying(session: Session, *, mailbox_id: int, folder: str) -> bool:
    """Whether the folder has a message to fetch again (so its sync is never skipped)."""
    found = session.scalar(
        select(QuarantinedMessage.id)
        .where(
            QuarantinedMessage.mailbox_id == mailbox_id,
            QuarantinedMessage.folder == folder,
            QuarantinedMessage.state == QuarantineState.RETRYING,
        )
        .limit(1)
    )
    return found is not None


def retrying_passed(
    session: Session, place: Place, *, last_uid: int, backfill_below: int | None
) -> list[tuple[int, int]]:
    """(UID, size) of the retrying rows both cursors have passed (the person's retries):
    the listing of new mail and the backfill do not reach them."""
    rows = session.execute(
        select(QuarantinedMessage.uid, QuarantinedMessage.size)
        .where(_at(place), QuarantinedMessage.state == QuarantineState.RETRYING)
        .where(QuarantinedMessage.uid <= last_uid)
        .order_by(QuarantinedMessage.uid)
    )
    return [
        (uid, size or 0) for uid, size in rows if backfill_below is None or uid >= backfill_below
    ]


def record_failures(
    session: Session,
    place: Place,
    failures: Sequence[Unreadable],
    *,
    sizes: Mapping[int, int] | None = None,
    server_ids: Mapping[int, str] | None = None,
    now: datetime | None = None,
) -> list[QuarantinedMessage]:
    """Count one failed attempt for each message; quarantine those out of attempts."""
    now = now or datetime.now(UTC)
    rows = []
    for failure in failures:
        row = session.scalar(
            select(QuarantinedMessage).where(_at(place), QuarantinedMessage.uid == failure.uid)
        )
        if row is None:
            row = QuarantinedMessage(
                mailbox_id=place.mailbox_id,
                folder=place.folder,
                uidvalidity=place.uidvalidity,
                uid=failure.uid,
                attempts=0,
                state=QuarantineState.RETRYING,
                first_error_at=now,
            )
            session.add(row)
        row.attempts += 1
        row.last_error = failure.reason[:MAX_ERROR]
        row.last_error_at = now
        if sizes is not None and failure.uid in sizes:
            row.size = sizes[failure.uid]
        if server_ids is not None and failure.uid in server_ids:
            row.server_id = server_ids[failure.uid]
        if row.state == QuarantineState.RETRYING and row.attempts >= QUARANTINE_AFTER:
            row.state = QuarantineState.QUARANTINED
        rows.append(row)
    session.flush()
    return rows


def forget_stored(session: Session, place: Place, uids: Iterable[int]) -> None:
    """The messages were stored at last: their rows go (in the batch's transaction)."""
    wanted = sorted(set(uids))
    if wanted:
        session.execute(
            delete(QuarantinedMessage).where(_at(place), QuarantinedMessage.uid.in_(wanted))
        )


def unlisted(session: Session, place: Place, listed: set[int]) -> set[int]:
    """After a whole folder's sync: the retrying UIDs no listing of it returned, so
    expunged meanwhile (every retrying UID lies in one: above `last_uid`, below
    `backfill_below`, or among the retries both cursors passed)."""
    retrying = session.scalars(
        select(QuarantinedMessage.uid).where(
            _at(place), QuarantinedMessage.state == QuarantineState.RETRYING
        )
    )
    return set(retrying) - listed


def clear_folder(session: Session, *, mailbox_id: int, folder: str, keep: int | None) -> int:
    """The folder's UIDVALIDITY changed: its rows under any other one go; how many."""
    query = delete(QuarantinedMessage).where(
        QuarantinedMessage.mailbox_id == mailbox_id, QuarantinedMessage.folder == folder
    )
    if keep is not None:
        query = query.where(QuarantinedMessage.uidvalidity != keep)
    result = session.execute(query)
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(slots=True)
class CursorHold:
    """How far one folder's cursor may move in this sync: never past a message still to
    retry. `forward`: new mail, oldest first (the cursor stays below the lowest retrying
    UID); else the backfill, newest first (it stays above the highest)."""

    forward: bool
    held: int | None = None
    failures: list[tuple[int, str, str]] = field(default_factory=list)  # uid, state, why

    def note(self, rows: Sequence[QuarantinedMessage]) -> None:
        """Hold the cursor at each row still retrying; remember every failure."""
        for row in rows:
            self.failures.append((row.uid, row.state, row.last_error))
            if row.state != QuarantineState.RETRYING:
                continue
            if self.held is None:
                self.held = row.uid
            elif self.forward:
                self.held = min(self.held, row.uid)
            else:
                self.held = max(self.held, row.uid)

    def forward_cursor(self, top: int) -> int:
        """The forward cursor after a batch whose highest UID is `top`."""
        return top if self.held is None else min(top, self.held - 1)

    def backfill_cursor(self, low: int) -> int:
        """The backfill cursor after a batch whose lowest UID is `low`."""
        return low if self.held is None else max(low, self.held + 1)


def over_limit(sizes: Iterable[tuple[int, int]]) -> dict[int, Unreadable]:
    """The messages listed as larger than the message size limit (connectors/limits.py):
    their FETCH or RETR is refused mid-answer, which would fail their whole batch at every
    sync, so they are not asked for but counted as failed attempts, with the reason."""
    cap = DEFAULT_LIMITS.message
    return {
        uid: Unreadable(
            uid, f"the server lists it as {size:,} bytes, over the {cap:,}-byte message limit"
        )
        for uid, size in sizes
        if size > cap
    }


def not_fetched_error(
    mailbox_id: int, failures: Sequence[tuple[str, int, str]]
) -> MessagesNotFetched:
    """The mailbox error for messages left retrying: (folder, UID, why) of each."""
    folder, uid, why = failures[0]
    more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
    return MessagesNotFetched(
        f"The server lists message UID {uid} in {folder}{more} but could not send it: {why}",
        hint=f"Mailroom fetches it again at the next sync; after {QUARANTINE_AFTER} failed "
        f"attempts it is quarantined: see `mailroom mailbox quarantine {mailbox_id}` (Retry "
        "or Dismiss there). If it persists, check the message on the server.",
    )

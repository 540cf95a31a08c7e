"""Deliver queued messages: never twice, retried with backoff, logged at once.

One attempt, step by step — every step that matters is committed before the next begins:

1. claim: a conditional UPDATE moves the entry to `sending` with a lease (so two workers
   never send one entry) and an `OutboxAttempt` row is added at stage `connecting`;
2. if an earlier attempt's outcome is unknown (it reached DATA and nobody recorded the
   answer: the process died, or the connection dropped mid-DATA), first look for the
   Message-ID in the Sent folder (UID SEARCH HEADER Message-ID). Found: it was sent.
   Not found on a server that files its own Sent copy (Gmail, Microsoft 365): it was not
   sent, go on. Not found elsewhere: the Sent folder cannot tell, so the entry is `held`
   for a person to decide — a second send is never risked;
3. SMTP: connect, MAIL, RCPT; then the attempt's stage becomes `data` (committed) and the
   content goes out. A kill before that commit leaves stage `connecting`: the server got
   no complete message (RFC 5321 §4.1.1.4), a retry is safe;
4. accepted (250): the entry becomes `sent` at once; then the copy is appended to the
   Sent folder (\\Seen; not for providers that file their own) and the message stored and
   linked (ingest.logbook). A kill between 4's commit and the logging is finished by the
   next `process_due`, which looks for the copy before appending, so no duplicate copy.

Transient failures (network, 4xx) are retried with exponential backoff (1 min doubling,
at most 1 hour apart, 8 attempts); permanent ones (authentication, TLS, a refused
recipient or sender, too big) fail at once with the server's reason and a fix.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Result, and_, or_, select, update

from mailroom.app import App
from mailroom.connectors.base import RawMessage
from mailroom.connectors.imap_append import SentFolder
from mailroom.connectors.smtp import SendRefused, SmtpSender
from mailroom.db.engine import transaction
from mailroom.db.models import Mailbox, Message, Record
from mailroom.db.outbox_models import MailboxSmtp, OutboxAttempt, OutboxEntry
from mailroom.errors import (
    AuthenticationError,
    CapabilityError,
    ConfigError,
    MailroomError,
    NotFound,
    TLSError,
    UserError,
)
from mailroom.ingest.logbook import store_message
from mailroom.mail.threads import normalise_message_id
from mailroom.mailboxes.store import incoming_settings
from mailroom.mailboxes.tokens import connect_with_token, is_oauth
from mailroom.matching.manual import link_by_hand
from mailroom.outbox.compose import wire_bytes
from mailroom.outbox.service import get_entry
from mailroom.outbox.smtp_settings import get_smtp, preset_of, smtp_settings

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 8


def backoff(attempt: int) -> timedelta:
    """Wait before attempt `attempt + 1`: 1, 2, 4, ... minutes, at most an hour."""
    return timedelta(seconds=min(60 * 2 ** max(attempt - 1, 0), 3600))


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """Where an entry stands after `deliver`, and the error of this attempt if any."""

    entry_id: int
    message_id: str
    status: str
    error: MailroomError | None = None
    copy_note: str | None = None


@dataclass(frozen=True, slots=True)
class _Claim:
    entry_id: int
    attempt_id: int
    number: int
    message_id: str
    envelope_from: str
    recipients: tuple[str, ...]
    raw: bytes
    unknown_before: bool


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def _updated(result: Result[Any]) -> int:
    """The number of rows an UPDATE changed."""
    return int(cast(CursorResult[Any], result).rowcount)


def _due(now: datetime) -> ColumnElement[bool]:
    return or_(
        and_(OutboxEntry.status == "queued", OutboxEntry.next_attempt_at <= now),
        and_(OutboxEntry.status == "sending", OutboxEntry.lease_until < now),
    )


def _claim(app: App, entry_id: int, now: datetime) -> _Claim | None:
    with transaction(app.sessions) as session:
        won = _updated(
            session.execute(
                update(OutboxEntry)
                .where(OutboxEntry.id == entry_id, _due(now))
                .values(
                    status="sending", lease_until=now + LEASE, attempts=OutboxEntry.attempts + 1
                )
                .execution_options(synchronize_session=False)
            )
        )
        if won != 1:
            return None
        entry = get_entry(session, entry_id)
        session.refresh(entry)
        dangling = session.scalars(
            select(OutboxAttempt).where(
                OutboxAttempt.entry_id == entry_id, OutboxAttempt.outcome.is_(None)
            )
        )
        for old in dangling:  # left by a process that died
            old.outcome = "unknown" if old.stage == "data" else "abandoned"
            old.finished_at = now
        session.flush()
        unknown = session.scalar(
            select(OutboxAttempt.id).where(
                OutboxAttempt.entry_id == entry_id, OutboxAttempt.outcome == "unknown"
            )
        )
        attempt = OutboxAttempt(entry_id=entry_id, number=entry.attempts, started_at=now)
        session.add(attempt)
        session.flush()
        if entry.raw is None:
            raise NotFound(f"Outbox entry {entry_id} has no message to send.")
        return _Claim(
            entry_id=entry.id,
            attempt_id=attempt.id,
            number=entry.attempts,
            message_id=entry.message_id,
            envelope_from=entry.envelope_from,
            recipients=tuple(entry.recipients),
            raw=entry.raw,
            unknown_before=unknown is not None,
        )


def _stage(app: App, attempt_id: int, stage: str) -> None:
    with transaction(app.sessions) as session:
        attempt = session.get(OutboxAttempt, attempt_id)
        assert attempt is not None
        attempt.stage = stage


def _load(app: App, entry_id: int) -> tuple[OutboxEntry, Mailbox, MailboxSmtp, Record | None]:
    with app.sessions() as session:
        entry = get_entry(session, entry_id)
        mailbox = session.get(Mailbox, entry.mailbox_id)
        assert mailbox is not None
        smtp = get_smtp(session, mailbox)
        record = session.get(Record, entry.record_id) if entry.record_id else None
        return entry, mailbox, smtp, record


def deliver(app: App, entry_id: int, *, now: datetime | None = None) -> DeliveryResult:
    """Make one attempt at sending `entry_id` if it is due; see the module docstring."""
    now = _now(now)
    claim = _claim(app, entry_id, now)
    entry, mailbox, smtp, _ = _load(app, entry_id)
    if claim is None:
        return DeliveryResult(entry.id, entry.message_id, entry.status)
    preset = preset_of(smtp)
    if claim.unknown_before:
        try:
            found = _find_in_sent(app, mailbox, claim.message_id)
        except MailroomError as exc:
            return _attempt_failed(app, claim, exc, now, unknown=False)
        if found is not None:
            _mark_sent(app, claim, now, outcome="found-in-sent")
            return log_sent(app, entry_id, copy=found)
        if not preset.server_saves_sent:
            return _hold(app, claim, now)
    reached_data = False

    def before_data() -> None:
        nonlocal reached_data
        _stage(app, claim.attempt_id, "data")
        reached_data = True

    try:
        settings = smtp_settings(mailbox, smtp, app.secrets, bearer=is_oauth(app, mailbox.id))
        with connect_with_token(app, mailbox.id, settings, SmtpSender.connect) as sender:
            accepted = sender.send(
                claim.envelope_from,
                claim.recipients,
                wire_bytes(claim.raw),
                before_data=before_data,
            )
    except MailroomError as exc:
        unknown = reached_data and not isinstance(exc, SendRefused)
        return _attempt_failed(app, claim, exc, now, unknown=unknown)
    _mark_sent(app, claim, now, outcome="accepted", code=accepted.code)
    log.info("outbox %s: %s accepted by %s", entry_id, claim.message_id, smtp.host)
    return log_sent(app, entry_id)


def _sent_folder(app: App, mailbox: Mailbox) -> SentFolder:
    """The mailbox's Sent folder over IMAP, logged in (with a fresh token if OAuth)."""
    connect = partial(SentFolder.connect, message_id_of=normalise_message_id)
    return connect_with_token(app, mailbox.id, incoming_settings(mailbox, app.secrets), connect)


def _find_in_sent(app: App, mailbox: Mailbox, message_id: str) -> RawMessage | None:
    if mailbox.protocol != "imap":
        return None
    with _sent_folder(app, mailbox) as sent:
        folder = sent.folder()
        return sent.find(folder, message_id) if folder else None


def _mark_sent(
    app: App, claim: _Claim, now: datetime, *, outcome: str, code: int | None = None
) -> None:
    with transaction(app.sessions) as session:
        entry = get_entry(session, claim.entry_id)
        entry.status = "sent"
        entry.sent_at = now
        entry.lease_until = now + LEASE  # held while the copy is saved and logged
        entry.error_kind = entry.last_error = entry.hint = None
        attempt = session.get(OutboxAttempt, claim.attempt_id)
        assert attempt is not None
        attempt.stage, attempt.outcome, attempt.smtp_code = "done", outcome, code
        attempt.finished_at = datetime.now(UTC)


def _is_permanent(exc: MailroomError) -> bool:
    if isinstance(exc, SendRefused):
        return exc.permanent
    return isinstance(
        exc, AuthenticationError | TLSError | CapabilityError | UserError | ConfigError
    )


def _attempt_failed(
    app: App, claim: _Claim, exc: MailroomError, now: datetime, *, unknown: bool
) -> DeliveryResult:
    permanent = _is_permanent(exc) and not unknown
    with transaction(app.sessions) as session:
        entry = get_entry(session, claim.entry_id)
        attempt = session.get(OutboxAttempt, claim.attempt_id)
        assert attempt is not None
        attempt.outcome = "unknown" if unknown else "permanent" if permanent else "transient"
        attempt.error = exc.message
        attempt.smtp_code = exc.code if isinstance(exc, SendRefused) else None
        attempt.finished_at = datetime.now(UTC)
        entry.error_kind, entry.last_error, entry.hint = exc.kind, exc.message, exc.hint
        entry.lease_until = None
        if permanent or entry.attempts >= MAX_ATTEMPTS:
            entry.status = "failed"
            if not permanent:
                entry.last_error = f"Gave up after {entry.attempts} attempts: {exc.message}"
            entry.next_attempt_at = None
        else:
            entry.status = "queued"
            entry.next_attempt_at = now + backoff(entry.attempts)
        status = entry.status
    log.warning("outbox %s attempt %s: %s (%s)", claim.entry_id, claim.number, exc.message, status)
    return DeliveryResult(claim.entry_id, claim.message_id, status, error=exc)


def _hold(app: App, claim: _Claim, now: datetime) -> DeliveryResult:
    with transaction(app.sessions) as session:
        entry = get_entry(session, claim.entry_id)
        attempt = session.get(OutboxAttempt, claim.attempt_id)
        assert attempt is not None
        attempt.outcome, attempt.finished_at = "held", now
        entry.status, entry.lease_until, entry.next_attempt_at = "held", None, None
        entry.error_kind = "unknown-outcome"
        entry.last_error = (
            "An earlier attempt may have been accepted by the server before Mailroom could "
            "record it, and the Sent folder cannot tell: not sending again on its own."
        )
        entry.hint = (
            f"Ask a recipient whether it arrived; to send it anyway, run "
            f"`mailroom outbox retry {entry.id}`."
        )
    return DeliveryResult(claim.entry_id, claim.message_id, "held")


def log_sent(app: App, entry_id: int, *, copy: RawMessage | None = None) -> DeliveryResult:
    """Save the Sent copy (unless found or filed by the provider) and store + link the
    message. Problems with the copy are noted on the entry, never raised: it was sent."""
    entry, mailbox, smtp, record = _load(app, entry_id)
    if entry.raw is None or entry.stored_message_id is not None:
        return DeliveryResult(entry.id, entry.message_id, entry.status, copy_note=entry.copy_note)
    note: str | None = None
    if copy is None and mailbox.protocol == "imap":
        try:
            with _sent_folder(app, mailbox) as sent:
                folder = sent.folder()
                if folder is None:
                    note = "The mailbox has no Sent folder; no copy was saved."
                else:
                    copy = sent.find(folder, entry.message_id)
                    if copy is None and not preset_of(smtp).server_saves_sent:
                        when = entry.sent_at.replace(tzinfo=UTC) if entry.sent_at else None
                        copy = sent.append(
                            folder, entry.raw, message_id=entry.message_id, when=when
                        )
                    elif copy is None:
                        note = "The provider files its own Sent copy; the next sync adds it."
        except MailroomError as exc:
            note = f"The Sent copy could not be saved: {exc.message}"
            log.warning("outbox %s: %s", entry_id, note)
    elif copy is None:
        note = f"A {mailbox.protocol} mailbox has no Sent folder to copy to."
    with transaction(app.sessions) as session:
        row = get_entry(session, entry_id)
        stored = store_message(
            session,
            company_id=row.company_id,
            mailbox_id=row.mailbox_id,
            blobs=app.blobs,
            data=entry.raw,
            copy=copy,
        )
        assert stored is not None  # the entry's own mailbox holds the placeholder
        message_row = stored[0]
        if record is not None:
            message = session.get(Message, message_row)
            assert message is not None
            try:
                link_by_hand(session, message=message, record=record)
            except UserError as exc:  # skipped by a filter: it holds nothing to show
                note = f"{note + ' ' if note else ''}Not linked to {record.ref}: {exc.message}"
        row.stored_message_id = message_row
        row.sent_folder = copy.folder if copy else None
        row.copy_note = note
        row.raw = None  # the blob store holds the bytes now (Message.raw_sha256)
        row.lease_until = None
    return DeliveryResult(entry.id, entry.message_id, "sent", copy_note=note)


def process_due(app: App, *, now: datetime | None = None, limit: int = 100) -> list[DeliveryResult]:
    """Send every due entry, take over abandoned ones (lease expired), finish logging."""
    now = _now(now)
    with app.sessions() as session:
        to_send = list(
            session.scalars(
                select(OutboxEntry.id).where(_due(now)).order_by(OutboxEntry.id).limit(limit)
            )
        )
        to_log = list(
            session.scalars(
                select(OutboxEntry.id).where(
                    OutboxEntry.status == "sent",
                    OutboxEntry.stored_message_id.is_(None),
                    or_(OutboxEntry.lease_until.is_(None), OutboxEntry.lease_until < now),
                )
            )
        )
    results = [deliver(app, entry_id, now=now) for entry_id in to_send]
    for entry_id in to_log:
        with transaction(app.sessions) as session:
            won = _updated(
                session.execute(
                    update(OutboxEntry)
                    .where(
                        OutboxEntry.id == entry_id,
                        OutboxEntry.stored_message_id.is_(None),
                        or_(OutboxEntry.lease_until.is_(None), OutboxEntry.lease_until < now),
                    )
                    .values(lease_until=now + LEASE)
                    .execution_options(synchronize_session=False)
                )
            )
        if won == 1:
            results.append(log_sent(app, entry_id))
    return results

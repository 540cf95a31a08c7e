"""Sync one mailbox: claim → connect → folder by folder, batch by batch → health.

Read this top to bottom to follow a message from the server to the timeline:

    sync_mailbox
      ├─ claim the mailbox                   claims.py: one sync per mailbox, company limit
      ├─ open_source(mailbox)                connectors/imap.py or pop3.py (no DB access)
      ├─ POP3? → sync_pop3                   pop3.py: UIDL diff, leave on server
      ├─ Gmail (X-GM-EXT-1)? → sync_all_mail gmail.py: All Mail once, labels on the copy
      └─ for each chosen folder: sync_folder folders.py, the stage machine below
           ├─ STATUS (UIDVALIDITY, UIDNEXT, MESSAGES, HIGHESTMODSEQ): unchanged → skip
           ├─ new mail above last_uid, oldest first  ┐ each batch: one transaction =
           ├─ expunges + flag changes: CHANGEDSINCE  │ ingest_batch (parse, store, copy,
           │  (+VANISHED), else a FLAGS diff         │ link) + cursor + heartbeat; the
           └─ backfill below backfill_below, newest  ┘ next batches are fetched meanwhile
                                                     (prefetch.py, bounded read-ahead; a
                                                     big fetch: fetch_worker.py processes)
      └─ health.record_success / record_failure (status, error log, backoff); a listed
         message the server did not send is retried, then quarantined (quarantine.py)

Per-folder stages (`FolderState.stage`, folders.FolderStage):

    new ──EXAMINE: last_uid := UIDNEXT-1, backfill_below := UIDNEXT──▶ backfill
    backfill ──batch (newest first) committed: backfill_below := min(batch)──▶ backfill
    backfill ──nothing left below (or before --since)──▶ ready
    ready ──STATUS unchanged──▶ ready (no fetch: cost O(folders), "cost grows with change")
    ready ──STATUS changed: fetch UID > last_uid, mark VANISHED copies gone,
            store changed FLAGS on the copies──▶ ready
    any ──UIDVALIDITY changed: old copies gone_at, cursors cleared──▶ new
    (a forward-only source: new ──fetch_since(last_uid)──▶ catchup ──done──▶ ready)

An error leaves the stage and both cursors as they were, and records the error on the
mailbox; the next sync resumes exactly there. A stop request (graceful shutdown) ends the
sync between two batches, every cursor consistent.

Exactly-once effect (invariants in docs/architecture.md): a batch and the cursor that
covers it commit together, so a process killed anywhere re-fetches at most one batch,
whose ingestion is then a no-op. Nothing in the mailbox changes ("read-only mailbox"):
EXAMINE and BODY.PEEK only; POP3 deletes only when the user chose it, and only after the
batch is committed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from mailroom.app import App
from mailroom.connectors.base import FolderInfo, FolderRole, FolderStatus, MailboxSource
from mailroom.db.engine import transaction
from mailroom.db.models import FolderState, Mailbox
from mailroom.db.statistics import GrowthAnalyzer
from mailroom.errors import MailroomError, NetworkError, NotFound, SystemFault
from mailroom.mail.blobs import sweep_staging
from mailroom.mailboxes.status import MailboxStatus, disable, mark_idle, mark_waiting
from mailroom.sync import claims, health
from mailroom.sync.connect import open_source
from mailroom.sync.folders import (
    FolderReport,
    FolderStage,
    ProgressEvent,
    SyncContext,
    sync_folder,
)
from mailroom.sync.gmail import all_mail, sync_all_mail
from mailroom.sync.pop3 import sync_pop3
from mailroom.sync.quarantine import not_fetched_error
from mailroom.sync.source import Pop3Source

log = logging.getLogger(__name__)

DEFAULT_BATCH = 200
# Messages per batch when a fetch goes to the fetch workers (SyncContext.worker_batch_size),
# unless the caller chose a batch size: still at most 16 MB of mail per batch (about 500
# of the bench's 30 KB messages). Each batch pays fixed costs (its transaction, the
# mailbox row locked, policy and directory loaded, the matching's queries, progress),
# about a tenth of an initial sync's ingesting CPU at 200 (bench/README.md, "Against the
# practical limit"). A kill re-fetches at most one batch.
WORKER_BATCH = 1000
Progress = Callable[[ProgressEvent], None]
AnySource = MailboxSource | Pop3Source
SourceOpener = Callable[[Mailbox, App], AnySource]
__all__ = ["FolderReport", "ProgressEvent", "SyncReport", "sync_all", "sync_mailbox"]


class StageTimeout(NetworkError):
    """A sync step ran past the stage timeout and its connection was cut."""

    kind = "stalled"


class SyncCrashed(SystemFault):
    """A sync stopped on an exception nothing foresaw: recorded like any server error
    (status `error`, a backoff), and logged with its traceback."""

    kind = "internal"


def crashed(mailbox_id: int, exc: BaseException) -> SyncCrashed:
    """The SyncCrashed that stands for `exc` on the mailbox (message cut to 500 chars)."""
    why = f"{type(exc).__name__}: {exc}"
    return SyncCrashed(f"Syncing mailbox {mailbox_id} stopped on an unexpected error ({why})"[:500])


@dataclass(slots=True)
class SyncReport:
    """What one mailbox's sync did, or why it did not run, or the error that stopped it."""

    mailbox_id: int
    folders: list[FolderReport] = field(default_factory=list)
    error: MailroomError | None = None
    skipped: str | None = None  # "busy", "waiting", "failed", "disabled", "sign-in", "paused"
    paused_until: datetime | None = None  # over the provider's download quota (health.py)

    @property
    def messages(self) -> int:
        return sum(f.messages for f in self.folders)

    @property
    def copies(self) -> int:
        return sum(f.copies for f in self.folders)

    @property
    def links(self) -> int:
        return sum(f.links for f in self.folders)

    @property
    def fetched(self) -> int:
        return sum(f.fetched for f in self.folders)

    @property
    def gone(self) -> int:
        return sum(f.gone for f in self.folders)


@dataclass(slots=True)
class ActiveSync:
    """A sync running in this process, watched for stalls by the scheduler."""

    mailbox_id: int
    source: AnySource | None = None
    beat: float = field(default_factory=time.monotonic)
    aborted: bool = False

    def abort(self) -> None:
        """Cut the sync's connection (from the scheduler's watchdog thread)."""
        self.aborted = True
        self._cut()

    def attach(self, source: AnySource) -> None:
        """The sync's connection, once open: cut at once if the watchdog has already aborted
        the sync (its stage timeout can pass while the connection is still being opened,
        and it aborts a sync only once)."""
        self.source = source
        if self.aborted:
            self._cut()

    def _cut(self) -> None:
        # Each side writes its field before reading the other's, so an abort racing an
        # attach cuts the connection at least once; a second cut is harmless.
        cut = getattr(self.source, "abort", None)
        if callable(cut):
            cut()


ACTIVE: dict[int, ActiveSync] = {}
_active_lock = threading.Lock()


def _later(mailbox: Mailbox) -> bool:
    """Whether the mailbox's resume time (`next_attempt_at`) is still to come."""
    resume = health.aware(mailbox.next_attempt_at)
    return resume is not None and resume > datetime.now(UTC)


def _default_opener(mailbox: Mailbox, app: App) -> AnySource:
    return open_source(mailbox, app)


def sync_mailbox(
    app: App,
    mailbox_id: int,
    *,
    batch_size: int | None = None,
    opener: SourceOpener = _default_opener,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    force: bool = False,
    stage_timeout: timedelta = claims.STAGE_TIMEOUT,
    owner: str | None = None,
) -> SyncReport:
    """Sync one mailbox's chosen folders; errors are recorded on the mailbox, not raised.

    `batch_size`: messages per committed batch; None: DEFAULT_BATCH, or WORKER_BATCH for
    a fetch that goes to the fetch workers. `force` also syncs a `failed` mailbox (an
    explicit request by the admin). `owner` names the claim (default
    `claims.new_owner()`); a worker's job adds its job id to it, so that the recovery of a
    stalled job releases exactly that job's claim (jobs/recovery.py).
    """
    report = SyncReport(mailbox_id=mailbox_id)
    owner = owner or claims.new_owner()
    with transaction(app.sessions) as session:
        mailbox = claims.lock_mailbox(session, mailbox_id)
        if mailbox is None:
            raise NotFound(f"No mailbox {mailbox_id}.", hint="See `mailroom mailbox list`.")
        if not mailbox.enabled:
            disable(mailbox)
            report.skipped = "disabled"
        elif mailbox.status == MailboxStatus.FAILED and not force:
            report.skipped = "failed"
        elif mailbox.error_kind == health.REVOKED and not force:
            report.skipped = "sign-in"  # a dead OAuth grant: never retried, only a sign-in helps
        elif mailbox.status == MailboxStatus.PAUSED and not force and _later(mailbox):
            report.skipped = "paused"  # Gmail's download quota: resumes by itself (health.py)
        elif not claims.within_limit(session, mailbox):
            mark_waiting(mailbox)
            mailbox.error_kind = "limit"
            mailbox.error_hint = health.HINTS["limit"]
            mailbox.last_error = "Waiting for a free slot under the company's mailbox limit."
            report.skipped = "waiting"
        if report.skipped:  # asked again at the next poll, not at every scheduler tick
            mailbox.last_attempt_at = datetime.now(UTC)
            mailbox.sync_requested_at = None
        elif not claims.claim(session, mailbox, owner=owner, timeout=stage_timeout):
            report.skipped = "busy"
        else:
            mailbox.sync_requested_at = None
    if report.skipped:
        return report
    claims.hold(owner)
    active = ActiveSync(mailbox_id)
    with _active_lock:
        ACTIVE[mailbox_id] = active
    ctx = SyncContext(
        app=app,
        mailbox_id=mailbox_id,
        company_id=mailbox.company_id,
        owner=owner,
        since=mailbox.since_date,
        batch_size=batch_size or DEFAULT_BATCH,
        worker_batch_size=batch_size or WORKER_BATCH,
        progress=progress,
        stop=stop,
        beat=lambda: setattr(active, "beat", time.monotonic()),
        statistics=GrowthAnalyzer(app.sessions, dialect=app.engine.dialect.name),
    )
    try:
        _run(app, mailbox, ctx, opener, active, report)
    except Exception as exc:  # recording the outcome failed: the claim goes stale, retried
        log.exception("mailbox %s: sync failed and could not be recorded", mailbox_id)
        report.error = report.error or crashed(mailbox_id, exc)
    finally:
        with _active_lock:
            ACTIVE.pop(mailbox_id, None)
        claims.release(owner)
    return report


def _run(
    app: App,
    mailbox: Mailbox,
    ctx: SyncContext,
    opener: SourceOpener,
    active: ActiveSync,
    report: SyncReport,
) -> None:
    source: AnySource | None = None
    sweep_staging(app.blobs.root)  # what killed syncs' fetch workers left (fetch_worker.py)
    try:
        source = opener(mailbox, app)
        active.attach(source)
        if isinstance(source, Pop3Source):
            report.folders.append(FolderReport(name="INBOX"))
            sync_pop3(ctx, source, report.folders[-1], delete=mailbox.delete_after_fetch)
        else:
            early = _status_before_list(app, mailbox.id, source)
            folders = source.list_folders()
            chosen: list[FolderInfo] = []
            if (everything := all_mail(source, folders)) is not None:  # Gmail: sync/gmail.py
                report.folders.append(FolderReport(name=everything.name))
                status = early.pop(everything.name, None)
                sync_all_mail(ctx, source, everything, report.folders[-1], status=status)
            else:
                chosen = choose_folders(folders, mailbox.folders)
            for info in chosen:
                report.folders.append(FolderReport(name=info.name))
                status = early.pop(info.name, None)
                sync_folder(ctx, source, info, report.folders[-1], status=status)
                if ctx.stopping:
                    break
        # a listed message not fetched is no success: the retry waits for the backoff
        unfetched = [(f.name, uid, why) for f in report.folders for uid, why in f.retrying]
        if unfetched:
            raise not_fetched_error(mailbox.id, unfetched)
    except MailroomError as exc:
        if active.aborted:
            exc = StageTimeout(
                f"Syncing mailbox {mailbox.id} stalled for longer than the stage timeout "
                f"({exc.message})"
            )
        report.error = exc
    except Exception as exc:  # never a traceback for the caller: a mailbox error, backoff
        log.exception("mailbox %s: sync stopped on an unexpected error", mailbox.id)
        report.error = crashed(mailbox.id, exc)
    finally:
        if source is not None:
            _close(mailbox.id, source, report)
    with transaction(app.sessions) as session:
        row = session.get(Mailbox, mailbox.id, with_for_update=True)
        if row is None or row.sync_owner != ctx.owner:
            return  # taken over (stale claim): the new owner reports
        if report.error is not None:
            found = health.record_failure(session, row, report.error)
            if found.pause:
                report.paused_until = health.aware(row.next_attempt_at)
            log.warning(
                "mailbox %s: %s: %s", mailbox.id, found.kind, report.error.message.splitlines()[0]
            )
        elif ctx.stopping:
            mark_idle(row)
            row.sync_owner = None
        else:
            health.record_success(row)


def _close(mailbox_id: int, source: AnySource, report: SyncReport) -> None:
    """Log out; a failed QUIT is an error (POP3 deletions were not applied)."""
    try:
        source.close()
    except MailroomError as exc:
        report.error = report.error or exc
    except Exception as exc:
        log.exception("mailbox %s: logging out failed", mailbox_id)
        report.error = report.error or crashed(mailbox_id, exc)


def _status_before_list(
    app: App, mailbox_id: int, source: MailboxSource
) -> dict[str, FolderStatus]:
    """STATUS of the folders synced before, asked before LIST.

    Dovecot answers STATUS from its mailbox list index in under a millisecond, but after a
    LIST in the same session it opens the folder instead (about 90 ms for 100,000
    messages in a maildir): asking first keeps a no-change resync O(folders). A folder that
    fails here (deleted, renamed) is simply asked again, with its error, after LIST.
    """
    with app.sessions() as session:
        names = list(
            session.scalars(
                select(FolderState.name).where(
                    FolderState.mailbox_id == mailbox_id, FolderState.stage == FolderStage.READY
                )
            )
        )
    found: dict[str, FolderStatus] = {}
    for name in names:
        try:
            found[name] = source.folder_status(name)
        except MailroomError:
            log.debug("mailbox %s: STATUS %s before LIST failed", mailbox_id, name)
    return found


def choose_folders(available: Sequence[FolderInfo], chosen: list[str]) -> list[FolderInfo]:
    """The mailbox's chosen folders (all must exist), else INBOX and Sent (RFC 6154)."""
    folders = list(available)
    by_name = {f.name: f for f in folders}
    if chosen:
        missing = [name for name in chosen if name not in by_name]
        if missing:
            raise NotFound(
                f"The server has no folder {', '.join(map(repr, missing))}.",
                hint="Check the folder names with `mailroom mailbox test ID`.",
            )
        return [by_name[name] for name in chosen]
    wanted = [f for f in folders if f.role is FolderRole.INBOX][:1]
    wanted += [f for f in folders if f.role is FolderRole.SENT][:1]
    return wanted


def due_mailboxes(app: App, *, include_failed: bool = False) -> list[int]:
    """Enabled mailboxes to sync once (`sync --once`): not disabled, not failed."""
    with app.sessions() as session:
        query = select(Mailbox.id).where(Mailbox.enabled.is_(True)).order_by(Mailbox.id)
        if not include_failed:
            query = query.where(Mailbox.status != MailboxStatus.FAILED)
        return list(session.scalars(query))


def sync_all(
    app: App,
    *,
    batch_size: int | None = None,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> list[SyncReport]:
    """Sync every enabled, not failed mailbox once, one after the other; one mailbox's
    failure, whatever it is, is its report's error and never stops the others."""
    reports = []
    for mid in due_mailboxes(app):
        if stop is not None and stop.is_set():
            break
        try:
            report = sync_mailbox(app, mid, batch_size=batch_size, progress=progress, stop=stop)
        except MailroomError as exc:
            report = SyncReport(mailbox_id=mid, error=exc)
        except Exception as exc:
            log.exception("mailbox %s: sync failed", mid)
            report = SyncReport(mailbox_id=mid, error=crashed(mid, exc))
        reports.append(report)
    return reports

"""One folder's sync: the stage machine drawn in sync/engine.py's docstring.

Each step commits one batch together with the cursor that covers it, in one short
transaction that also refreshes the mailbox's heartbeat and progress, so a process killed
anywhere re-fetches at most one batch (whose ingestion is then a no-op: invariant
"exactly-once effect", docs/architecture.md).
Cursors only move one way: `last_uid` up, `backfill_below` down, and never past a listed
message that is neither stored nor quarantined (sync/quarantine.py): a message the server
did not send readably holds its cursor until a later sync stores it or gives up on it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Protocol, cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailroom.connectors.base import (
    Fetched,
    FolderInfo,
    FolderStatus,
    MailboxSource,
    RawMessage,
    size_batches,
)
from mailroom.db.checkpoints import background_checkpoints
from mailroom.db.engine import transaction
from mailroom.db.models import FolderState, Mailbox
from mailroom.errors import ProtocolError
from mailroom.mail.message import ParsedMessage
from mailroom.sync import copies, quarantine
from mailroom.sync.context import FolderReport, FolderStage, ProgressEvent, SyncContext
from mailroom.sync.quarantine import CursorHold, Place
from mailroom.sync.source import SyncSource

if TYPE_CHECKING:
    # Imported where used: a sync that finds nothing new (most, from cron or the
    # scheduler) never loads ingest, matching or the fetch workers.
    from mailroom.ingest.batch import BatchResult
    from mailroom.sync.fetch_worker import Reopen

log = logging.getLogger(__name__)
__all__ = ["FolderReport", "FolderStage", "ProgressEvent", "SyncContext", "sync_folder"]

PREFETCH_DEPTH = 2  # batches read ahead: memory holds at most depth + 2 batches
# Worker processes for a large fetch (sync/fetch_worker.py), each with its own connection.
FETCH_WORKERS = min(2, os.cpu_count() or 1)


class ClaimLost(ProtocolError):
    """Another sync took this mailbox over (our claim went stale): stop without writing."""

    kind = "stalled"


class UidValidityChanged(Exception):
    """The folder's UIDVALIDITY changed while it was being synced: start it over."""


def folder_state(session: Session, mailbox_id: int, info: FolderInfo) -> FolderState:
    state = session.scalar(
        select(FolderState).where(
            FolderState.mailbox_id == mailbox_id, FolderState.name == info.name
        )
    )
    if state is None:
        state = FolderState(
            mailbox_id=mailbox_id, name=info.name, role=info.role.value, stage=FolderStage.NEW
        )
        session.add(state)
        session.flush()
    return state


def commit_batch(
    ctx: SyncContext,
    info: FolderInfo,
    raws: Sequence[RawMessage],
    update: Callable[[FolderState], None],
    *,
    extra: Callable[[Session], None] | None = None,
    parses: Sequence[ParsedMessage] | None = None,
) -> BatchResult:
    """Ingest `raws` and apply `update` to the folder's state in one transaction
    (`parses`: the fetch worker's header parses of `raws`, sync/fetch_worker.py)."""
    from mailroom.ingest.batch import BatchResult, IngestTarget, ingest_batch
    from mailroom.matching.directory import load_directory

    with transaction(ctx.app.sessions) as session:
        # FOR UPDATE (PostgreSQL): a claim taken over meanwhile is seen, never raced
        mailbox = session.get(Mailbox, ctx.mailbox_id, with_for_update=True)
        if mailbox is None or mailbox.sync_owner != ctx.owner:
            raise ClaimLost(f"Mailbox {ctx.mailbox_id} was taken over by another sync")
        result = BatchResult()
        if raws:
            target = IngestTarget(
                company_id=ctx.company_id,
                mailbox_id=ctx.mailbox_id,
                directory=load_directory(session, ctx.company_id),
                blobs=ctx.app.blobs,
                defer_bodies=True,  # headers now, bodies on first read (ingest/bodies.py)
            )
            result = ingest_batch(session, target, raws, parses)
        if extra is not None:
            extra(session)
        update(folder_state(session, ctx.mailbox_id, info))
        session.flush()
        event = _touch(session, mailbox, info.name)
    if ctx.statistics is not None:
        ctx.statistics.added(result.messages)
    ctx.beat()
    if ctx.progress is not None:
        ctx.progress(event)
    return result


def _touch(session: Session, mailbox: Mailbox, folder: str) -> ProgressEvent:
    """Refresh the heartbeat and the mailbox's progress (sums over its folders)."""
    sums = session.execute(
        select(
            func.coalesce(func.sum(FolderState.done_messages), 0),
            func.coalesce(func.sum(FolderState.total_messages), 0),
            func.coalesce(func.sum(FolderState.done_bytes), 0),
            func.coalesce(func.sum(FolderState.total_bytes), 0),
        ).where(FolderState.mailbox_id == mailbox.id)
    ).one()
    mailbox.heartbeat_at = datetime.now(UTC)
    done, total, done_bytes, total_bytes = (int(v) for v in sums)
    mailbox.progress_done, mailbox.progress_total = done, total
    mailbox.progress_done_bytes, mailbox.progress_total_bytes = done_bytes, total_bytes
    return ProgressEvent(mailbox.id, folder, done, total, done_bytes, total_bytes)


def unchanged(state: FolderState, status: FolderStatus) -> bool:
    """STATUS says nothing happened since the last complete sync (costs no fetch)."""
    return (
        state.stage == FolderStage.READY
        and state.uidvalidity == status.uidvalidity
        and state.uidnext == status.uidnext
        and state.messages == status.messages
        and (status.highestmodseq is None or state.highestmodseq == status.highestmodseq)
    )


def sync_folder(
    ctx: SyncContext,
    source: MailboxSource,
    info: FolderInfo,
    report: FolderReport,
    *,
    status: FolderStatus | None = None,
) -> None:
    """Bring one folder up to date, counting into `report` (kept when an error stops it).

    `status`: its STATUS if the caller just asked (engine.py asks before LIST). Restarts
    once if the folder's UIDVALIDITY changes while it is being synced.
    """
    try:
        _sync_folder(ctx, source, info, report, status)
    except UidValidityChanged:
        log.warning("mailbox %s: UIDVALIDITY of %s changed mid-sync", ctx.mailbox_id, info.name)
        _sync_folder(ctx, source, info, report)
        report.uidvalidity_changed = True


def _sync_folder(
    ctx: SyncContext,
    source: MailboxSource,
    info: FolderInfo,
    report: FolderReport,
    status: FolderStatus | None = None,
) -> None:
    status = status or source.folder_status(info.name)
    if not needs_sync(ctx, info, status, report, reset=reset_folder):
        return
    if isinstance(source, SyncSource):
        _sync_by_uid(ctx, source, info, report)
    else:
        _sync_forward(ctx, source, info, status, report)


Reset = Callable[[Session, SyncContext, FolderState, int], int]


def needs_sync(
    ctx: SyncContext, info: FolderInfo, status: FolderStatus, report: FolderReport, *, reset: Reset
) -> bool:
    """In one short transaction: start the folder over (`reset`) when its UIDVALIDITY
    changed, and say whether it needs a sync — not when STATUS shows nothing new and no
    message waits for a retry (then `report.skipped`)."""
    with transaction(ctx.app.sessions) as session:
        state = folder_state(session, ctx.mailbox_id, info)
        if state.uidvalidity is not None and state.uidvalidity != status.uidvalidity:
            report.gone += reset(session, ctx, state, status.uidvalidity)
            report.uidvalidity_changed = True
        if unchanged(state, status) and not quarantine.has_retrying(
            session, mailbox_id=ctx.mailbox_id, folder=info.name
        ):
            report.skipped = True
            return False
    return True


def reset_folder(session: Session, ctx: SyncContext, state: FolderState, uidvalidity: int) -> int:
    """UIDVALIDITY changed: old copies are gone, the folder starts over as new; returns
    how many copies were retired."""
    log.warning(
        "mailbox %s: UIDVALIDITY of %s changed (%s → %s): rescanning",
        ctx.mailbox_id,
        state.name,
        state.uidvalidity,
        uidvalidity,
    )
    gone = copies.retire_other_uidvalidities(
        session, mailbox_id=ctx.mailbox_id, folder=state.name, keep=uidvalidity
    )
    quarantine.clear_folder(session, mailbox_id=ctx.mailbox_id, folder=state.name, keep=uidvalidity)
    state.stage = FolderStage.NEW
    state.uidvalidity = state.uidnext = state.messages = state.highestmodseq = None
    state.last_uid = 0
    state.backfill_below = None
    state.total_messages = state.total_bytes = state.done_messages = state.done_bytes = 0
    return gone


def _sync_by_uid(
    ctx: SyncContext, source: SyncSource, info: FolderInfo, report: FolderReport
) -> None:
    """New mail oldest first, then expunges, then the backfill newest first."""
    name = info.name
    opened = source.open_folder(name)
    with ctx.app.sessions() as session:
        state = folder_state(session, ctx.mailbox_id, info)
        stage, known_validity = FolderStage(state.stage), state.uidvalidity
        last_uid, below, modseq = state.last_uid, state.backfill_below, state.highestmodseq
    if known_validity is not None and known_validity != opened.uidvalidity:
        raise UidValidityChanged(name)
    backlog: list[tuple[int, int]] | None = None
    if stage is FolderStage.NEW:
        top = max(opened.uidnext - 1, 0)
        backlog = source.list_uids(name, low=1, high=top, since=ctx.since) if top else []
        below = top + 1 if backlog else None

        def start(state: FolderState) -> None:
            state.uidvalidity = opened.uidvalidity
            state.last_uid = max(state.last_uid, top)
            state.backfill_below = below
            state.stage = FolderStage.BACKFILL
            state.total_messages += len(backlog or [])
            state.total_bytes += sum(size for _, size in backlog or [])

        commit_batch(ctx, info, [], start)
        last_uid = top
    # 0. messages both cursors passed that are to be fetched again (a person's retry)
    with ctx.app.sessions() as session:
        place = Place(ctx.mailbox_id, name, opened.uidvalidity)
        again = quarantine.retrying_passed(session, place, last_uid=last_uid, backfill_below=below)
    if again and not _fetch_and_commit(ctx, source, info, opened, again, report, mode="retry"):
        return
    # 1. new mail, oldest first: the forward cursor follows each committed batch
    fresh = source.list_uids(name, low=last_uid + 1)
    ahead = CursorHold(forward=True)
    if not _fetch_and_commit(ctx, source, info, opened, fresh, report, hold=ahead):
        return
    # 2. expunged or moved away, and flags changed by other clients, since the last sync
    if stage is not FolderStage.NEW:
        _changes(ctx, source, info, opened, modseq, report, fetched={uid for uid, _ in fresh})
    # 3. backfill, newest first, resumable from `backfill_below`
    behind = CursorHold(forward=False)
    if below is not None:
        if backlog is None:
            backlog = source.list_uids(name, low=1, high=below - 1, since=ctx.since)
        if not _fetch_and_commit(
            ctx, source, info, opened, backlog, report, mode="backfill", hold=behind
        ):
            return
    listed = {uid for uid, _ in (*again, *fresh, *(backlog or []))}
    with ctx.app.sessions() as session:
        gone = quarantine.unlisted(session, place, listed)
    if gone:  # retrying, but no longer on the server

        def forget(session: Session) -> None:
            quarantine.forget_stored(session, place, gone)

        commit_batch(ctx, info, [], lambda s: None, extra=forget)
    if ahead.held is not None or behind.held is not None:
        return  # a message to fetch again holds a cursor: the folder is not done

    def finish(state: FolderState) -> None:
        state.backfill_below = None
        state.stage = FolderStage.READY
        state.uidnext, state.messages = opened.uidnext, opened.messages
        state.highestmodseq = opened.highestmodseq
        state.last_success_at = datetime.now(UTC)
        state.last_error = None

    commit_batch(ctx, info, [], finish)


class ChangeSource(SyncSource, Protocol):
    """A source that also reports flag changes (ImapSource.changes: CONDSTORE/QRESYNC)."""

    def changes(
        self, folder: str, *, known: set[int], modseq: int | None
    ) -> tuple[set[int], dict[int, tuple[str, ...]]]: ...


class VanishedSource(SyncSource, Protocol):
    """A source that reports expunges without a list of the UIDs we hold (QRESYNC)."""

    def changes_since(
        self, folder: str, *, modseq: int, high: int
    ) -> tuple[set[int], dict[int, tuple[str, ...]]] | None: ...


def _changes(
    ctx: SyncContext,
    source: SyncSource,
    info: FolderInfo,
    opened: FolderStatus,
    modseq: int | None,
    report: FolderReport,
    *,
    fetched: set[int],
) -> None:
    """Mark copies gone and store changed flags, in one commit (RFC 7162 §3.1.4, §3.2.6).

    With QRESYNC the server names what vanished, so only the highest live UID is read
    here (cost grows with the change); otherwise every live UID of the folder is, for
    the source to diff against. The flags of the messages `fetched` by this sync are left
    out: CHANGEDSINCE names them all (they are newer than `modseq`), they were stored as
    fetched, and a change since is newer than the HIGHESTMODSEQ of this EXAMINE, which
    the folder keeps, so the next sync sees it (without CONDSTORE every flag is read
    again anyway)."""
    mailbox_id, folder, uidvalidity = ctx.mailbox_id, info.name, opened.uidvalidity
    with ctx.app.sessions() as session:
        high = copies.highest_live_uid(
            session, mailbox_id=mailbox_id, folder=folder, uidvalidity=uidvalidity
        )
    if high is None:
        return  # no live copy: nothing to be gone or flagged
    found = None
    if modseq is not None and hasattr(source, "changes_since"):
        found = cast(VanishedSource, source).changes_since(folder, modseq=modseq, high=high)
    if found is not None:
        gone, flags = found
    else:
        with ctx.app.sessions() as session:
            known = copies.live_uids(
                session, mailbox_id=mailbox_id, folder=folder, uidvalidity=uidvalidity
            )
        flags = {}
        if hasattr(source, "changes"):
            gone, flags = cast(ChangeSource, source).changes(folder, known=known, modseq=modseq)
        else:
            gone = source.expunged(folder, known=known, modseq=modseq)
    flags = {uid: kept for uid, kept in flags.items() if uid not in fetched}
    if not gone and not flags:
        return

    def apply(session: Session) -> None:
        report.gone += copies.mark_gone(
            session, mailbox_id=mailbox_id, folder=folder, uidvalidity=uidvalidity, uids=gone
        )
        report.flags_changed += copies.update_flags(
            session, mailbox_id=mailbox_id, folder=folder, uidvalidity=uidvalidity, flags=flags
        )

    commit_batch(ctx, info, [], lambda s: None, extra=apply)


def _fetch_and_commit(
    ctx: SyncContext,
    source: SyncSource,
    info: FolderInfo,
    opened: FolderStatus,
    sizes: Sequence[tuple[int, int]],
    report: FolderReport,
    *,
    mode: str = "forward",
    hold: CursorHold | None = None,
) -> bool:
    """Fetch `sizes`' UIDs in bounded batches, each committed with its cursor; the next
    batches are fetched meanwhile (sync/prefetch.py). False when a stop request ended it.

    `mode`: "forward" (new mail oldest first, `last_uid` follows), "backfill" (newest
    first, `backfill_below` follows) or "retry" (UIDs both cursors passed: no cursor
    moves). A listed message the server did not send readably is recorded in the batch's
    transaction (sync/quarantine.py); while it is retrying, `hold` keeps the cursor from
    passing it and the messages after it are still stored.
    """
    hold = hold or CursorHold(forward=mode != "backfill")
    ordered = sizes if mode != "backfill" else sizes[::-1]
    reopen = _worker_reopen(ctx, source, sizes)
    count = ctx.batch_size if reopen is None else ctx.worker_batch_size or ctx.batch_size
    batches = size_batches(ordered, max_count=count, max_bytes=ctx.max_batch_bytes)
    size_of = dict(sizes)
    place = Place(ctx.mailbox_id, info.name, opened.uidvalidity)
    with ctx.app.sessions() as session:
        pending = quarantine.known(session, place)
    # quarantined or dismissed: not fetched again, but the cursor passes them
    skip = {uid for uid, state in pending.items() if state != quarantine.QuarantineState.RETRYING}
    too_big = quarantine.over_limit(sizes)  # their FETCH would fail the whole batch, always
    wanted = [[uid for uid in batch if uid not in skip and uid not in too_big] for batch in batches]
    with ExitStack() as stack:
        fetched = _fetched(ctx, source, info, reopen, wanted, stack)
        for batch, (_, got, parses) in zip(batches, fetched, strict=True):
            raws = got.messages
            if any(raw.uidvalidity != opened.uidvalidity for raw in raws):
                raise UidValidityChanged(info.name)
            got.unreadable += [too_big[uid] for uid in batch if uid in too_big and uid not in skip]
            failed = {u.uid for u in got.unreadable} | skip
            settled = [uid for uid in batch if uid in pending and uid not in failed]
            extra = partial(
                _record, place=place, got=got, settled=settled, hold=hold, sizes=size_of
            )
            batch_sizes = {uid: size_of.get(uid, 0) for uid in batch}
            advance = partial(_advance, sizes=batch_sizes, mode=mode, hold=hold)
            result = commit_batch(ctx, info, raws, advance, extra=extra, parses=parses)
            report.add(result, len(raws))
            if ctx.stopping:
                report.unfetched += hold.failures
                return False
    report.unfetched += hold.failures
    return True


FetchedBatches = Iterable[tuple[list[int], Fetched, list[ParsedMessage] | None]]


def _worker_reopen(
    ctx: SyncContext, source: SyncSource, sizes: Sequence[tuple[int, int]]
) -> Reopen | None:
    """How a fetch worker reopens `source`, when this fetch is big enough to go to the
    workers (`Settings.parse_worker_min`) and the source can be reopened; else None."""
    reopen: Reopen | None = getattr(source, "reopen", None)
    worker_min = ctx.app.settings.parse_worker_min
    if reopen is None or worker_min is None or len(sizes) < worker_min:
        return None
    return reopen


def _fetched(
    ctx: SyncContext,
    source: SyncSource,
    info: FolderInfo,
    reopen: Reopen | None,
    batches: list[list[int]],
    stack: ExitStack,
) -> FetchedBatches:
    """The batches as fetched: by worker processes when `reopen` is given (a big fetch,
    `_worker_reopen`), else read ahead here."""
    from mailroom.mailboxes.tokens import fresh_reopen
    from mailroom.sync.fetch_worker import FetchWorker
    from mailroom.sync.prefetch import Prefetcher

    if reopen is not None:
        # a big fetch: SQLite's checkpoints leave the ingesting thread (db/checkpoints.py)
        stack.enter_context(background_checkpoints(ctx.app.engine))
        reopen = fresh_reopen(ctx.app, ctx.mailbox_id, reopen)
        worker = FetchWorker(
            reopen,
            info.name,
            ctx.app.blobs.root,
            depth=2 * FETCH_WORKERS,  # one batch queued behind the one each worker fetches
            processes=FETCH_WORKERS,
            cancelled=lambda: ctx.stopping or bool(getattr(source, "aborted", False)),
        )
        return stack.enter_context(worker).batches(batches)
    fetch = partial(source.fetch_uids, info.name)
    prefetcher = stack.enter_context(Prefetcher(fetch, batches, depth=PREFETCH_DEPTH))
    return ((batch, got, None) for batch, got in prefetcher)


def _record(
    session: Session,
    *,
    place: Place,
    got: Fetched,
    settled: list[int],
    hold: CursorHold,
    sizes: Mapping[int, int],
) -> None:
    """In the batch's transaction: rows of messages now stored (or expunged) go, each
    unreadable one counts an attempt and may hold the cursor."""
    quarantine.forget_stored(session, place, settled)
    if got.unreadable:
        hold.note(quarantine.record_failures(session, place, got.unreadable, sizes=sizes))


def _advance(state: FolderState, *, sizes: Mapping[int, int], mode: str, hold: CursorHold) -> None:
    """Move the cursor over a committed batch, never past a message to retry, and count
    the messages it passed (each once, however often a held batch is fetched again)."""
    if mode == "forward":  # new mail counts towards the total as the cursor passes it
        old = state.last_uid
        state.last_uid = max(old, hold.forward_cursor(max(sizes)))
        passed = [uid for uid in sizes if old < uid <= state.last_uid]
        state.total_messages += len(passed)
        state.total_bytes += sum(sizes[uid] for uid in passed)
    elif mode == "backfill":
        was = state.backfill_below
        low = hold.backfill_cursor(min(sizes))
        state.backfill_below = low if was is None else min(was, low)
        now = state.backfill_below
        passed = [uid for uid in sizes if uid >= now and (was is None or uid < was)]
    else:  # a retry below both cursors: counted when its cursor passed it
        return
    state.done_messages += len(passed)
    state.done_bytes += sum(sizes[uid] for uid in passed)


def _sync_forward(
    ctx: SyncContext,
    source: MailboxSource,
    info: FolderInfo,
    status: FolderStatus,
    report: FolderReport,
) -> None:
    """The base verbs only: everything above the cursor, oldest first, no expunge check."""
    with ctx.app.sessions() as session:
        last_uid = folder_state(session, ctx.mailbox_id, info).last_uid
    for batch in source.fetch_since(info.name, after_uid=last_uid, batch_size=ctx.batch_size):

        def advance(state: FolderState, batch: list[RawMessage] = batch) -> None:
            state.uidvalidity = status.uidvalidity
            state.last_uid = max(state.last_uid, max(raw.uid for raw in batch))
            state.stage = FolderStage.CATCHUP
            state.done_messages += len(batch)
            state.total_messages += len(batch)
            nbytes = sum(raw.size for raw in batch)
            state.done_bytes += nbytes
            state.total_bytes += nbytes

        report.add(commit_batch(ctx, info, batch, advance), len(batch))
        if ctx.stopping:
            return

    def finish(state: FolderState) -> None:
        state.uidvalidity = status.uidvalidity
        state.uidnext, state.messages = status.uidnext, status.messages
        state.highestmodseq = status.highestmodseq
        state.stage = FolderStage.READY
        state.last_success_at = datetime.now(UTC)
        state.last_error = None

    commit_batch(ctx, info, [], finish)

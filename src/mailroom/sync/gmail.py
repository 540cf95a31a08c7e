"""Sync a Gmail mailbox: All Mail once, each message with its labels, the inbox first.

How a labelled message is fetched once. Gmail keeps every message of an account once, in
the folder with the \\All attribute (`[Gmail]/All Mail`); a label is a view of it, so a
message with five labels shows up in five folders (INBOX, `[Gmail]/Sent Mail`,
"Customers", …) with one X-GM-MSGID. When the server lists `X-GM-EXT-1` (Google's IMAP
extensions, connectors/imap_gmail.py) the engine (`sync_mailbox`) syncs that one folder
instead of INBOX, Sent or any chosen label folder:

    STATUS All Mail: unchanged since the last sync → nothing fetched (cost O(1))
    listing  UID FETCH a:b (UID RFC822.SIZE X-GM-MSGID X-GM-LABELS)   metadata, no body
    new      UIDs above last_uid, oldest first                      ┐ an X-GM-MSGID this
    changes  labels and flags (CHANGEDSINCE), expunges (UID SEARCH) │ mailbox already has
    backfill first X-GM-RAW "in:inbox" newest first, then the rest  │ is not fetched again:
             newest first (`backfill_below` moves over the rest)    ┘ its copy is re-keyed

Each message's body is fetched once (BODY.PEEK[]) and stored as one copy, of All Mail,
whose `labels` are its X-GM-LABELS (`\\Inbox`, `\\Sent`, "Customers") and whose `server_id`
is its X-GM-MSGID: the copy's folders are its labels. `\\Sent` says the account sent it
(ingest counts such mail as outbound even from an address not yet known to the company).
Batches commit with their cursor exactly as in folders.py (`commit_batch`), so a kill
re-fetches at most one batch; the inbox-first pass moves no cursor and is recomputed from
the server on the next run, less what is stored.

A message All Mail lists but the server does not send readably (`BODY[] NIL`, left out of
the answer, or listed over the message size limit) goes through the same quarantine as
any folder's (sync/quarantine.py): each failed attempt is recorded in its batch's
transaction, the messages after it are stored all the same, and a cursor never passes
it while it is `retrying`. With Gmail's order that means:

    forward   oldest first: `last_uid` stays below the lowest retrying UID (CursorHold)
    inbox     moves no cursor, but its retrying UIDs are noted on the backfill's hold
    rest      newest first: `backfill_below` stays above the highest retrying UID of
              either pass, so an inbox message to retry is not passed by the rest pass
    retry     a person's Retry of a message both cursors passed: fetched by UID (listed
              with its labels first) at the next sync, no cursor moves

Holding a cursor costs a listing, never a refetch: the next sync lists from the cursor
and leaves out what All Mail already holds (`_todo`, by UID) and what is quarantined or
dismissed. A sync that leaves a message retrying does not mark All Mail ready and ends in
the mailbox error `MessagesNotFetched` (the engine), so the retry waits for the backoff;
after QUARANTINE_AFTER failed syncs the message is quarantined and the sync goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol, TypeVar, cast, runtime_checkable

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from mailroom.connectors import imap_gmail
from mailroom.connectors.base import (
    Fetched,
    FolderInfo,
    FolderRole,
    FolderStatus,
    RawMessage,
    size_batches,
)
from mailroom.connectors.imap_fetch import search, uid_set, uid_sizes
from mailroom.db.engine import transaction
from mailroom.db.models import FolderState, MessageCopy
from mailroom.sync import copies, quarantine
from mailroom.sync.context import FolderReport, FolderStage, SyncContext
from mailroom.sync.folders import commit_batch, folder_state, needs_sync, reset_folder
from mailroom.sync.quarantine import CursorHold, Place, QuarantineState
from mailroom.sync.source import SyncSource

log = logging.getLogger(__name__)
R = TypeVar("R")
Entries = Sequence[imap_gmail.GmailEntry]


@runtime_checkable
class GmailSource(SyncSource, Protocol):
    """An IMAP source that can say what the server offers and run imap_gmail's verbs."""

    def supports(self, capability: str) -> bool:
        """Whether the server announced `capability`."""
        ...

    def run_raw(self, folder: str, action: str, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        """`fn(imaplib connection, *args)` with `folder` selected, errors translated."""
        ...


def all_mail(source: object, folders: Sequence[FolderInfo]) -> FolderInfo | None:
    """The \\All folder to sync instead of every label, when the server is Gmail."""
    if not _gmail(source):
        return None
    return next((f for f in folders if f.role is FolderRole.ALL), None)


def labelled(source: object, folder: str, raws: list[RawMessage]) -> list[RawMessage]:
    """`raws` with their X-GM-LABELS and X-GM-MSGID when `source` is Gmail's All Mail
    (for fetches outside the sync, e.g. sync/retro.py); otherwise unchanged."""
    if not raws or not _gmail(source):
        return raws
    assert isinstance(source, GmailSource)
    spec = uid_set(r.uid for r in raws)
    entries = source.run_raw(folder, "UID FETCH X-GM-LABELS", imap_gmail.listing, spec)
    by_uid = {e.uid: e for e in entries}
    return [
        replace(r, labels=by_uid[r.uid].labels, server_id=str(by_uid[r.uid].msgid))
        if r.uid in by_uid
        else r
        for r in raws
    ]


def _gmail(source: object) -> bool:
    return isinstance(source, GmailSource) and source.supports(imap_gmail.CAPABILITY)


def sync_all_mail(
    ctx: SyncContext,
    source: object,
    info: FolderInfo,
    report: FolderReport,
    *,
    status: FolderStatus | None = None,
) -> None:
    """Bring the mailbox's All Mail up to date (the module doc), counting into `report`.

    `source` is the one `all_mail` accepted."""
    if not isinstance(source, GmailSource):
        raise TypeError("sync_all_mail needs a source that runs Gmail's verbs")
    status = status or source.folder_status(info.name)
    if not needs_sync(ctx, info, status, report, reset=reset_folder):
        return
    _Run(ctx, source, info, report).sync()


class _Run:
    """One sync of All Mail: the steps of the module doc, in order."""

    def __init__(
        self, ctx: SyncContext, source: GmailSource, info: FolderInfo, report: FolderReport
    ) -> None:
        self.ctx, self.source, self.info, self.report = ctx, source, info, report
        self.name = info.name

    def _gm(self, action: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return self.source.run_raw(self.name, action, fn, *args, **kwargs)

    def sync(self) -> None:
        opened = self.source.open_folder(self.name)
        with transaction(self.ctx.app.sessions) as session:
            state = folder_state(session, self.ctx.mailbox_id, self.info)
            if state.uidvalidity not in (None, opened.uidvalidity):  # since STATUS: restart
                # the messages come back by X-GM-MSGID, without being fetched again
                self.report.gone += reset_folder(session, self.ctx, state, opened.uidvalidity)
                self.report.uidvalidity_changed = True
            stage, last_uid = FolderStage(state.stage), state.last_uid
            below, modseq = state.backfill_below, state.highestmodseq
        self.uidvalidity = opened.uidvalidity
        self.place = Place(self.ctx.mailbox_id, self.name, opened.uidvalidity)
        if stage is FolderStage.NEW:
            top = max(opened.uidnext - 1, 0)
            below = top + 1 if top and opened.messages else None
            self._start(top, below)
            last_uid = top
        # 0. a person's retries both cursors passed: fetched by UID, no cursor moves
        with self.ctx.app.sessions() as session:
            again = quarantine.retrying_passed(
                session, self.place, last_uid=last_uid, backfill_below=below
            )
        retried = self._listing(uid_set(uid for uid, _ in again)) if again else []
        if not self._store(retried, mode="retry", hold=CursorHold(forward=True)):
            return
        # 1. new mail, oldest first; the cursor stays below a message to fetch again
        fresh = self._listing(f"{last_uid + 1}:*") if opened.messages else []
        ahead = CursorHold(forward=True)
        if not self._store(fresh, mode="forward", hold=ahead):
            return
        if fresh:  # every entry is stored now (the reused ones too), or held
            top = ahead.forward_cursor(max(e.uid for e in fresh))
            commit_batch(self.ctx, self.info, [], partial(_raise_last, top=top))
        if stage is not FolderStage.NEW:
            self._changes(last_uid, modseq)
        # 2. the backfill: the inbox, then the rest; the cursor stays above a retry
        behind = CursorHold(forward=False)
        listed = [e.uid for e in (*retried, *fresh)]
        if below is not None and not self._backfill(below, behind, listed):
            return
        self._forget_unlisted(set(listed))
        if ahead.held is None and behind.held is None:  # else the folder is not done
            self._finish(opened)

    # -- steps ---------------------------------------------------------------------------

    def _start(self, top: int, below: int | None) -> None:
        def start(state: FolderState) -> None:
            state.uidvalidity = self.uidvalidity
            state.last_uid = max(state.last_uid, top)
            state.backfill_below = below
            state.stage = FolderStage.BACKFILL

        commit_batch(self.ctx, self.info, [], start)

    def _listing(self, spec: str) -> list[imap_gmail.GmailEntry]:
        entries: list[imap_gmail.GmailEntry] = self._gm(
            "UID FETCH X-GM-MSGID X-GM-LABELS", imap_gmail.listing, spec
        )
        return entries

    def _backfill(self, below: int, hold: CursorHold, listed: list[int]) -> bool:
        """The inbox first, then the rest, each newest first; False when stopped. Adds
        the UIDs it listed to `listed`."""
        if self.ctx.since is not None:
            dated = self._gm(
                "UID SEARCH SINCE", uid_sizes, low=1, high=below - 1, since=self.ctx.since
            )
            spec = uid_set(uid for uid, _ in dated) if dated else None
        else:
            spec = f"1:{below - 1}" if below > 1 else None
        candidates = self._listing(spec) if spec else []
        listed += [e.uid for e in candidates]
        todo = self._todo(candidates)
        self._count_total(todo)
        inbox = set(self._gm("UID SEARCH X-GM-RAW", imap_gmail.raw_search, "in:inbox"))
        first = [e for e in todo if e.uid in inbox]
        # The inbox pass moves no cursor, but a message of it left to retry holds the
        # backfill cursor of the rest pass above it (`hold` is shared).
        if not self._store(first[::-1], mode="inbox", hold=hold, todo=True):
            return False
        rest = [e for e in todo if e.uid not in inbox]
        return self._store(rest[::-1], mode="backfill", hold=hold, todo=True)

    def _todo(self, entries: Entries) -> list[imap_gmail.GmailEntry]:
        """The entries still to store: neither stored in All Mail yet, nor quarantined or
        dismissed (sync/quarantine.py: those are not fetched again)."""
        if not entries:
            return []
        with self.ctx.app.sessions() as session:
            stored = self._stored(session, [e.uid for e in entries])
            pending = quarantine.known(session, self.place)
        settled = {uid for uid, state in pending.items() if state != QuarantineState.RETRYING}
        return [e for e in entries if e.uid not in stored and e.uid not in settled]

    def _stored(self, session: Session, uids: list[int]) -> set[int]:
        """Which of these UIDs All Mail holds a live copy of (a few: asked by UID; many,
        as the backfill lists: every live UID of the folder in one query)."""
        if len(uids) > copies.CHUNK:
            return copies.live_uids(
                session,
                mailbox_id=self.ctx.mailbox_id,
                folder=self.name,
                uidvalidity=self.uidvalidity,
            )
        found = session.scalars(
            select(MessageCopy.uid).where(
                MessageCopy.mailbox_id == self.ctx.mailbox_id,
                MessageCopy.folder == self.name,
                MessageCopy.uidvalidity == self.uidvalidity,
                MessageCopy.gone_at.is_(None),
                MessageCopy.uid.in_(uids),
            )
        )
        return set(found)

    def _forget_unlisted(self, listed: set[int]) -> None:
        """Rows still retrying whose UID no listing of this sync returned: expunged."""
        with self.ctx.app.sessions() as session:
            gone = quarantine.unlisted(session, self.place, listed)
        if gone:

            def forget(session: Session) -> None:
                quarantine.forget_stored(session, self.place, gone)

            commit_batch(self.ctx, self.info, [], lambda state: None, extra=forget)

    def _count_total(self, todo: Entries) -> None:
        def count(state: FolderState) -> None:
            state.total_messages = state.done_messages + len(todo)
            state.total_bytes = state.done_bytes + sum(e.size for e in todo)

        commit_batch(self.ctx, self.info, [], count)

    def _store(self, entries: Entries, *, mode: str, hold: CursorHold, todo: bool = False) -> bool:
        """Store `entries` in this order: known X-GM-MSGIDs as copies at once, the others
        fetched in bounded batches, each committed with its cursor and its quarantine
        rows (sync/quarantine.py). False when stopped. `todo`: `entries` are filtered
        already (`_todo`)."""
        entries = list(entries) if todo else self._todo(entries)
        if not entries:
            return True
        from mailroom.sync.prefetch import Prefetcher  # loaded only when there is mail to fetch

        by_uid = {e.uid: e for e in entries}
        reused = self._reuse(entries)
        fetch = [(e.uid, e.size) for e in entries if e.uid not in reused]
        batches = size_batches(
            fetch, max_count=self.ctx.batch_size, max_bytes=self.ctx.max_batch_bytes
        )
        too_big = quarantine.over_limit(fetch)  # their FETCH would fail the batch, always
        wanted = [[uid for uid in batch if uid not in too_big] for batch in batches]
        fetcher = partial(self.source.fetch_uids, self.name)
        try:
            with Prefetcher(fetcher, wanted, depth=2) as prefetcher:
                for batch, (_, got) in zip(batches, prefetcher, strict=True):
                    got.unreadable += [too_big[uid] for uid in batch if uid in too_big]
                    self._commit(batch, got, by_uid, mode=mode, hold=hold)
                    if self.ctx.stopping:
                        return False
        finally:
            self.report.unfetched += hold.failures
            hold.failures = []
        return True

    def _commit(
        self,
        batch: list[int],
        got: Fetched,
        by_uid: dict[int, imap_gmail.GmailEntry],
        *,
        mode: str,
        hold: CursorHold,
    ) -> None:
        """One fetched batch, its labels, its cursor and its quarantine rows: one commit."""
        labelled = [
            replace(r, labels=by_uid[r.uid].labels, server_id=str(by_uid[r.uid].msgid))
            for r in got.messages
            if r.uid in by_uid
        ]
        left: set[int] = set()  # UIDs still to retry after this batch

        def record(session: Session) -> None:
            failed = {u.uid for u in got.unreadable}
            quarantine.forget_stored(session, self.place, [u for u in batch if u not in failed])
            if got.unreadable:
                rows = quarantine.record_failures(
                    session,
                    self.place,
                    got.unreadable,
                    sizes={uid: by_uid[uid].size for uid in failed if uid in by_uid},
                    server_ids={uid: str(by_uid[uid].msgid) for uid in failed if uid in by_uid},
                )
                hold.note(rows)
                left.update(r.uid for r in rows if r.state == QuarantineState.RETRYING)

        sizes = {uid: by_uid[uid].size for uid in batch}
        advance = partial(_advance, sizes=sizes, mode=mode, hold=hold, left=left)
        result = commit_batch(self.ctx, self.info, labelled, advance, extra=record)
        self.report.add(result, len(got.messages))

    def _reuse(self, entries: Entries) -> set[int]:
        """Copies for the entries whose X-GM-MSGID is stored already (no fetch); their UIDs."""
        with self.ctx.app.sessions() as session:
            known = _known_msgids(session, self.ctx.mailbox_id, [e.msgid for e in entries])
        reused = [e for e in entries if str(e.msgid) in known]
        if not reused:
            return set()

        def add(session: Session) -> None:
            _add_copies(session, self.ctx.mailbox_id, self.name, self.uidvalidity, reused, known)

        def count(state: FolderState) -> None:
            state.done_messages += len(reused)
            state.done_bytes += sum(e.size for e in reused)

        commit_batch(self.ctx, self.info, [], count, extra=add)
        return {e.uid for e in reused}

    def _changes(self, high: int, modseq: int | None) -> None:
        """Labels and flags changed since the last sync, and messages gone from All Mail."""
        with self.ctx.app.sessions() as session:
            known = copies.live_uids(
                session,
                mailbox_id=self.ctx.mailbox_id,
                folder=self.name,
                uidvalidity=self.uidvalidity,
            )
        if not known:
            return
        high = max(known)
        since = modseq if modseq is not None and self.source.supports("CONDSTORE") else None
        changed = self._gm("UID FETCH X-GM-LABELS", imap_gmail.changes, high=high, modseq=since)
        present = set(self._gm("UID SEARCH", search, f"UID 1:{high}"))
        gone = known - present
        if not changed and not gone:
            return

        def apply(session: Session) -> None:
            mid, folder, validity = self.ctx.mailbox_id, self.name, self.uidvalidity
            self.report.gone += copies.mark_gone(
                session, mailbox_id=mid, folder=folder, uidvalidity=validity, uids=gone
            )
            self.report.flags_changed += copies.update_flags(
                session,
                mailbox_id=mid,
                folder=folder,
                uidvalidity=validity,
                flags={uid: f for uid, (f, _) in changed.items()},
            )
            _update_labels(
                session,
                mailbox_id=mid,
                folder=folder,
                uidvalidity=validity,
                labels={uid: lab for uid, (_, lab) in changed.items()},
            )

        commit_batch(self.ctx, self.info, [], lambda state: None, extra=apply)

    def _finish(self, opened: FolderStatus) -> None:
        def finish(state: FolderState) -> None:
            state.backfill_below = None
            state.stage = FolderStage.READY
            state.uidnext, state.messages = opened.uidnext, opened.messages
            state.highestmodseq = opened.highestmodseq
            state.last_success_at = datetime.now(UTC)
            state.last_error = None

        commit_batch(self.ctx, self.info, [], finish)


def _advance(
    state: FolderState,
    *,
    sizes: Mapping[int, int],
    mode: str,
    hold: CursorHold,
    left: set[int],
) -> None:
    """Move the cursor over a committed batch, never past a message to retry (`hold`):
    forward up, the backfill down; the inbox-first pass moves none (it is recomputed from
    the server, less what is stored) and neither does a retry. Counts the messages
    settled (stored or given up on), not those `left` to retry: they count when settled."""
    settled = [uid for uid in sizes if uid not in left]
    nbytes = sum(sizes[uid] for uid in settled)
    if mode == "retry":
        return  # counted when a cursor passed it
    if mode == "forward":
        state.last_uid = max(state.last_uid, hold.forward_cursor(max(sizes)))
        state.total_messages += len(settled)
        state.total_bytes += nbytes
    elif mode == "backfill":
        low = hold.backfill_cursor(min(sizes))
        state.backfill_below = (
            low if state.backfill_below is None else min(state.backfill_below, low)
        )
    state.done_messages += len(settled)
    state.done_bytes += nbytes


def _raise_last(state: FolderState, *, top: int) -> None:
    state.last_uid = max(state.last_uid, top)


def _known_msgids(session: Session, mailbox_id: int, msgids: Sequence[int]) -> dict[str, int]:
    """X-GM-MSGID → message id of those this mailbox has a copy of (gone or not)."""
    found: dict[str, int] = {}
    keys = sorted({str(m) for m in msgids})
    for start in range(0, len(keys), copies.CHUNK):
        rows = session.execute(
            select(MessageCopy.server_id, MessageCopy.message_id).where(
                MessageCopy.mailbox_id == mailbox_id,
                MessageCopy.server_id.in_(keys[start : start + copies.CHUNK]),
            )
        )
        found.update({sid: mid for sid, mid in rows if sid is not None})
    return found


def _add_copies(
    session: Session,
    mailbox_id: int,
    folder: str,
    uidvalidity: int,
    entries: Entries,
    known: dict[str, int],
) -> None:
    """Copy rows for messages already stored, found again by X-GM-MSGID (a new UID)."""
    existing = copies.live_uids(
        session, mailbox_id=mailbox_id, folder=folder, uidvalidity=uidvalidity
    )
    rows = [
        {
            "message_id": known[str(e.msgid)],
            "mailbox_id": mailbox_id,
            "folder": folder,
            "uidvalidity": uidvalidity,
            "uid": e.uid,
            "flags": [],
            "labels": list(e.labels),
            "server_id": str(e.msgid),
        }
        for e in entries
        if e.uid not in existing
    ]
    if rows:
        session.execute(insert(cast(Any, MessageCopy.__table__)), rows)


def _update_labels(
    session: Session,
    *,
    mailbox_id: int,
    folder: str,
    uidvalidity: int,
    labels: dict[int, tuple[str, ...]],
) -> None:
    """Store the labels Gmail reported for these UIDs (only the copy rows change)."""
    for uid, names in labels.items():
        session.execute(
            update(MessageCopy)
            .where(
                MessageCopy.mailbox_id == mailbox_id,
                MessageCopy.folder == folder,
                MessageCopy.uidvalidity == uidvalidity,
                MessageCopy.uid == uid,
            )
            .values(labels=sorted(names))
        )

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
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol, TypeVar, cast, runtime_checkable

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from mailroom.connectors import imap_gmail
from mailroom.connectors.base import (
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
from mailroom.sync.folders import commit_batch, folder_state, unchanged
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
    with transaction(ctx.app.sessions) as session:
        state = folder_state(session, ctx.mailbox_id, info)
        if state.uidvalidity is not None and state.uidvalidity != status.uidvalidity:
            report.gone += _restart(session, ctx, state, status.uidvalidity)
            report.uidvalidity_changed = True
        if unchanged(state, status):
            report.skipped = True
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
                self.report.gone += _restart(session, self.ctx, state, opened.uidvalidity)
                self.report.uidvalidity_changed = True
            stage, last_uid = FolderStage(state.stage), state.last_uid
            below, modseq = state.backfill_below, state.highestmodseq
        self.uidvalidity = opened.uidvalidity
        if stage is FolderStage.NEW:
            top = max(opened.uidnext - 1, 0)
            below = top + 1 if top and opened.messages else None
            self._start(top, below)
            last_uid = top
        fresh = self._listing(f"{last_uid + 1}:*") if opened.messages else []
        if not self._store(fresh, mode="forward"):
            return
        if fresh:  # every entry is stored now, the reused ones too
            top = max(e.uid for e in fresh)
            commit_batch(self.ctx, self.info, [], partial(_raise_last, top=top))
        if stage is not FolderStage.NEW:
            self._changes(last_uid, modseq)
        if below is not None and not self._backfill(below):
            return
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

    def _backfill(self, below: int) -> bool:
        """The inbox first, then the rest, each newest first; False when stopped."""
        if self.ctx.since is not None:
            dated = self._gm(
                "UID SEARCH SINCE", uid_sizes, low=1, high=below - 1, since=self.ctx.since
            )
            spec = uid_set(uid for uid, _ in dated) if dated else None
        else:
            spec = f"1:{below - 1}" if below > 1 else None
        candidates = self._listing(spec) if spec else []
        with self.ctx.app.sessions() as session:
            stored = copies.live_uids(
                session,
                mailbox_id=self.ctx.mailbox_id,
                folder=self.name,
                uidvalidity=self.uidvalidity,
            )
        todo = [e for e in candidates if e.uid not in stored]
        self._count_total(todo)
        inbox = set(self._gm("UID SEARCH X-GM-RAW", imap_gmail.raw_search, "in:inbox"))
        first = [e for e in todo if e.uid in inbox]
        if not self._store(first[::-1], mode="inbox"):
            return False
        rest = [e for e in todo if e.uid not in inbox]
        return self._store(rest[::-1], mode="backfill")

    def _count_total(self, todo: Entries) -> None:
        def count(state: FolderState) -> None:
            state.total_messages = state.done_messages + len(todo)
            state.total_bytes = state.done_bytes + sum(e.size for e in todo)

        commit_batch(self.ctx, self.info, [], count)

    def _store(self, entries: Entries, *, mode: str) -> bool:
        """Store `entries` in this order: known X-GM-MSGIDs as copies at once, the others
        fetched in bounded batches, each committed with its cursor. False when stopped."""
        if not entries:
            return True
        from mailroom.sync.prefetch import Prefetcher  # loaded only when there is mail to fetch

        by_uid = {e.uid: e for e in entries}
        reused = self._reuse(entries)
        fetch = [(e.uid, e.size) for e in entries if e.uid not in reused]
        batches = size_batches(
            fetch, max_count=self.ctx.batch_size, max_bytes=self.ctx.max_batch_bytes
        )
        fetcher = partial(self.source.fetch_uids, self.name)
        with Prefetcher(fetcher, batches, depth=2) as prefetcher:
            for batch, got in prefetcher:
                if got.unreadable:  # never passed silently; not yet quarantined on this path
                    raise quarantine.not_fetched_error(
                        self.ctx.mailbox_id,
                        [(self.name, u.uid, u.reason) for u in got.unreadable],
                    )
                raws = got.messages
                labelled = [
                    replace(r, labels=by_uid[r.uid].labels, server_id=str(by_uid[r.uid].msgid))
                    for r in raws
                    if r.uid in by_uid
                ]
                nbytes = sum(by_uid[uid].size for uid in batch)
                advance = partial(_advance, batch=batch, nbytes=nbytes, mode=mode)
                self.report.add(commit_batch(self.ctx, self.info, labelled, advance), len(raws))
                if self.ctx.stopping:
                    return False
        return True

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


def _advance(state: FolderState, *, batch: list[int], nbytes: int, mode: str) -> None:
    """Move the cursor over a committed batch: forward up, the backfill down; the
    inbox-first pass moves none (it is recomputed from the server, less what is stored)."""
    if mode == "forward":
        state.last_uid = max(state.last_uid, max(batch))
        state.total_messages += len(batch)
        state.total_bytes += nbytes
    elif mode == "backfill":
        state.backfill_below = min(state.backfill_below or min(batch), min(batch))
    state.done_messages += len(batch)
    state.done_bytes += nbytes


def _raise_last(state: FolderState, *, top: int) -> None:
    state.last_uid = max(state.last_uid, top)


def _restart(session: Session, ctx: SyncContext, state: FolderState, uidvalidity: int) -> int:
    """All Mail's UIDVALIDITY changed: old copies are gone, the folder starts over (the
    messages come back by X-GM-MSGID, without being fetched again)."""
    log.warning("mailbox %s: UIDVALIDITY of %s changed: rescanning", ctx.mailbox_id, state.name)
    gone = copies.retire_other_uidvalidities(
        session, mailbox_id=ctx.mailbox_id, folder=state.name, keep=uidvalidity
    )
    state.stage = FolderStage.NEW
    state.uidvalidity = state.uidnext = state.messages = state.highestmodseq = None
    state.last_uid = 0
    state.backfill_below = None
    state.total_messages = state.total_bytes = state.done_messages = state.done_bytes = 0
    return gone


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

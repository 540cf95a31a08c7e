"""Sync one mailbox: cursor → fetch → ingest, folder by folder, batch by batch.

Read this top to bottom to follow a message from the server to the timeline:

    sync_mailbox
      ├─ open_source(mailbox)                 connectors/imap.py: TLS, login (no DB access)
      ├─ choose folders                       the mailbox's list, else INBOX + Sent (RFC 6154)
      └─ for each folder: _sync_folder
           ├─ source.folder_status(folder)    STATUS: UIDVALIDITY, UIDNEXT (cheap, no fetch)
           ├─ unchanged? → skip               cost O(folders) when nothing is new (DESIGN #7)
           ├─ UIDVALIDITY changed? → rescan   cursor back to 0; identity dedup keeps it single
           └─ for each batch of fetch_since(last_uid):
                  one transaction: ingest_batch (parse, store, copy, link)
                                   + advance the folder's cursor to the batch's last UID
Per-folder state (`FolderState.stage`):

    new ──first fetch──▶ syncing ──batch committed──▶ syncing … ──folder done──▶ idle
     ▲                      │ error                                             │
     └── UIDVALIDITY change ┴──────────────▶ error (cursor unchanged) ◀─────────┘

Exactly-once effect (DESIGN #2): a batch and the cursor that covers it commit together, so
a process killed anywhere re-fetches at most one batch, whose ingestion is then a no-op.
Nothing in the mailbox changes (DESIGN #1): the source fetches with BODY.PEEK on EXAMINE.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.app import App
from mailroom.connectors.base import FolderInfo, FolderRole, MailboxSource
from mailroom.db.engine import transaction
from mailroom.db.models import FolderState, Mailbox, MailboxError
from mailroom.errors import MailroomError, NotFound
from mailroom.matching.directory import load_directory
from mailroom.sync.ingest import IngestTarget, ingest_batch
from mailroom.sync.mailboxes import open_source

log = logging.getLogger(__name__)

DEFAULT_BATCH = 200
Progress = Callable[[str, int, int], None]


@dataclass(slots=True)
class FolderReport:
    """What one folder's sync did."""

    name: str
    skipped: bool = False
    fetched: int = 0
    messages: int = 0
    copies: int = 0
    links: int = 0
    parse_errors: int = 0


@dataclass(slots=True)
class SyncReport:
    """What one mailbox's sync did, or the error that stopped it."""

    mailbox_id: int
    folders: list[FolderReport] = field(default_factory=list)
    error: MailroomError | None = None

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


SourceOpener = Callable[[Mailbox, App], MailboxSource]


def _default_opener(mailbox: Mailbox, app: App) -> MailboxSource:
    return open_source(mailbox, app.secrets)


def sync_mailbox(
    app: App,
    mailbox_id: int,
    *,
    batch_size: int = DEFAULT_BATCH,
    opener: SourceOpener = _default_opener,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> SyncReport:
    """Sync every chosen folder of one mailbox; errors are recorded, not raised."""
    report = SyncReport(mailbox_id=mailbox_id)
    with transaction(app.sessions) as session:
        mailbox = session.get(Mailbox, mailbox_id)
        if mailbox is None:
            raise NotFound(f"No mailbox {mailbox_id}.")
        mailbox.status = "syncing"
    try:
        source = opener(mailbox, app)
    except MailroomError as exc:
        _record_failure(app, mailbox_id, exc)
        report.error = exc
        return report
    try:
        folders = _choose_folders(source.list_folders(), mailbox.folders)
        for info in folders:
            report.folders.append(
                _sync_folder(
                    app, mailbox, source, info, batch_size=batch_size, progress=progress, stop=stop
                )
            )
            if stop is not None and stop.is_set():
                break
    except MailroomError as exc:
        _record_failure(app, mailbox_id, exc)
        report.error = exc
        return report
    finally:
        source.close()
    with transaction(app.sessions) as session:
        row = session.get(Mailbox, mailbox_id)
        assert row is not None
        row.status = "ok"
        row.last_error = None
        row.last_success_at = datetime.now(UTC)
    return report


def _choose_folders(available: Sequence[FolderInfo], chosen: list[str]) -> list[FolderInfo]:
    by_name = {f.name: f for f in available}
    if chosen:
        missing = [name for name in chosen if name not in by_name]
        if missing:
            raise NotFound(
                f"The server has no folder {', '.join(map(repr, missing))}.",
                hint="Check the folder names with `mailroom mailbox test ID`.",
            )
        return [by_name[name] for name in chosen]
    wanted = [f for f in available if f.role is FolderRole.INBOX]
    wanted += [f for f in available if f.role is FolderRole.SENT][:1]
    return wanted


def _folder_state(session: Session, mailbox_id: int, info: FolderInfo) -> FolderState:
    state = session.scalar(
        select(FolderState).where(
            FolderState.mailbox_id == mailbox_id, FolderState.name == info.name
        )
    )
    if state is None:
        state = FolderState(mailbox_id=mailbox_id, name=info.name, role=info.role.value)
        session.add(state)
        session.flush()
    return state


def _sync_folder(
    app: App,
    mailbox: Mailbox,
    source: MailboxSource,
    info: FolderInfo,
    *,
    batch_size: int,
    progress: Progress | None,
    stop: threading.Event | None = None,
) -> FolderReport:
    report = FolderReport(name=info.name)
    status = source.folder_status(info.name)
    with app.sessions() as session:
        state = _folder_state(session, mailbox.id, info)
        session.commit()
        last_uid = state.last_uid
        if state.uidvalidity is not None and state.uidvalidity != status.uidvalidity:
            log.warning("UIDVALIDITY of %s changed: rescanning the folder", info.name)
            last_uid = 0
        elif state.uidvalidity == status.uidvalidity and status.uidnext <= last_uid + 1:
            report.skipped = True
            return report
    total = status.messages
    for batch in source.fetch_since(info.name, after_uid=last_uid, batch_size=batch_size):
        with transaction(app.sessions) as session:
            target = IngestTarget(
                company_id=mailbox.company_id,
                mailbox_id=mailbox.id,
                directory=load_directory(session, mailbox.company_id),
                blobs=app.blobs,
            )
            result = ingest_batch(session, target, batch)
            state = _folder_state(session, mailbox.id, info)
            state.uidvalidity = status.uidvalidity
            state.last_uid = max(raw.uid for raw in batch)
            state.uidnext = status.uidnext
            state.highestmodseq = status.highestmodseq
            state.stage = "syncing"
        report.fetched += len(batch)
        report.messages += result.messages
        report.copies += result.copies
        report.links += result.links
        report.parse_errors += result.parse_errors
        if progress:
            progress(info.name, report.fetched, total)
        if stop is not None and stop.is_set():
            return report
    with transaction(app.sessions) as session:
        state = _folder_state(session, mailbox.id, info)
        state.uidvalidity = status.uidvalidity
        state.uidnext = status.uidnext
        state.highestmodseq = status.highestmodseq
        state.stage = "idle"
        state.last_success_at = datetime.now(UTC)
        state.last_error = None
    return report


def _record_failure(app: App, mailbox_id: int, exc: MailroomError) -> None:
    log.warning("mailbox %s: %s: %s", mailbox_id, exc.kind, exc.message)
    with transaction(app.sessions) as session:
        mailbox = session.get(Mailbox, mailbox_id)
        if mailbox is None:
            return
        mailbox.status = "error"
        mailbox.last_error = exc.message
        session.add(
            MailboxError(mailbox_id=mailbox_id, kind=exc.kind, message=exc.message, hint=exc.hint)
        )


def sync_all(
    app: App,
    *,
    batch_size: int = DEFAULT_BATCH,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> list[SyncReport]:
    """Sync every enabled mailbox once, one after the other."""
    with app.sessions() as session:
        ids = list(session.scalars(select(Mailbox.id).where(Mailbox.enabled).order_by(Mailbox.id)))
    reports = []
    for mid in ids:
        if stop is not None and stop.is_set():
            break
        reports.append(sync_mailbox(app, mid, batch_size=batch_size, progress=progress, stop=stop))
    return reports

"""Retro-linking from the server: search a record's addresses in the company's mailboxes.

Mail already stored is linked when a record is created or gains an address (matching's
relinking). Older mail that was never fetched — before a mailbox's `--since` window, or in
a folder that is not synced — is only on the server: `backfill_record` searches every
enabled IMAP mailbox of the record's company, folder by folder, with UID SEARCH FROM / TO
/ CC for each of the record's external addresses (RFC 3501 §6.4.4), fetches the messages
not stored from that place yet (BODY.PEEK, nothing changes on the server) and ingests
them, which stores, dedups and links them like any synced mail. Cursors are not touched:
the regular sync and this search never step on each other's positions, and ingestion is
idempotent if both fetch the same message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select

from mailroom.app import App
from mailroom.connectors.base import FolderInfo, MailboxSource, RawMessage, size_batches
from mailroom.crm.records import get_record
from mailroom.db.engine import transaction
from mailroom.db.models import Mailbox, MessageCopy
from mailroom.errors import MailroomError
from mailroom.ingest.batch import IngestTarget, ingest_batch
from mailroom.matching.directory import load_directory
from mailroom.sync.connect import open_source
from mailroom.sync.gmail import all_mail, labelled
from mailroom.sync.source import Pop3Source, SyncSource

log = logging.getLogger(__name__)

Opener = Callable[[Mailbox, App], "MailboxSource | Pop3Source"]


@dataclass(slots=True)
class RetroReport:
    """What a server-side search for a record found and stored."""

    record: str
    addresses: list[str]
    mailboxes: int = 0
    found: int = 0
    fetched: int = 0
    messages: int = 0
    links: int = 0
    errors: list[str] = field(default_factory=list)


def _default_opener(mailbox: Mailbox, app: App) -> MailboxSource | Pop3Source:
    return open_source(mailbox, app)


def backfill_record(
    app: App,
    *,
    company_id: int,
    ref: str,
    opener: Opener = _default_opener,
    batch_size: int = 100,
) -> RetroReport:
    """Search the company's mailboxes for the record's addresses and ingest what is missing."""
    with app.sessions() as session:
        record = get_record(session, company_id=company_id, ref=ref)
        directory = load_directory(session, company_id)
        addresses = [e.address for e in record.emails if not directory.is_internal(e.address)]
        mailboxes = list(
            session.scalars(
                select(Mailbox).where(
                    Mailbox.company_id == company_id,
                    Mailbox.enabled.is_(True),
                    Mailbox.protocol == "imap",
                )
            )
        )
        report = RetroReport(record=record.ref, addresses=addresses)
    if not addresses:
        return report
    from mailroom.sync.engine import choose_folders

    for mailbox in mailboxes:
        try:
            source = opener(mailbox, app)
        except MailroomError as exc:
            report.errors.append(f"mailbox {mailbox.id}: {exc.message}")
            continue
        try:
            if not isinstance(source, SyncSource):
                continue
            report.mailboxes += 1
            folders = source.list_folders()
            everything = all_mail(source, folders)  # Gmail: All Mail alone (sync/gmail.py)
            chosen = [everything] if everything else choose_folders(folders, mailbox.folders)
            for info in chosen:
                _search_folder(app, mailbox, source, info, addresses, report, batch_size)
        except MailroomError as exc:
            report.errors.append(f"mailbox {mailbox.id}: {exc.message}")
        finally:
            source.close()
    return report


def _search_folder(
    app: App,
    mailbox: Mailbox,
    source: SyncSource,
    info: FolderInfo,
    addresses: list[str],
    report: RetroReport,
    batch_size: int,
) -> None:
    opened = source.open_folder(info.name)
    if opened.messages == 0:
        return
    found = set(source.search_addresses(info.name, addresses))
    report.found += len(found)
    with app.sessions() as session:
        stored = set(
            session.scalars(
                select(MessageCopy.uid).where(
                    MessageCopy.mailbox_id == mailbox.id,
                    MessageCopy.folder == info.name,
                    MessageCopy.uidvalidity == opened.uidvalidity,
                )
            )
        )
    missing = sorted(found - stored, reverse=True)  # newest first
    if not missing:
        return
    sizes = [(uid, 0) for uid in missing]
    for batch in size_batches(sizes, max_count=batch_size):
        got = source.fetch_uids(info.name, batch)
        raws: list[RawMessage] = labelled(source, info.name, got.messages)
        for failed in got.unreadable:  # below the cursors: no retry here, but said
            log.warning(
                "retro %s: mailbox %s %s UID %s not fetched: %s",
                report.record,
                mailbox.id,
                info.name,
                failed.uid,
                failed.reason,
            )
        with transaction(app.sessions) as session:
            target = IngestTarget(
                company_id=mailbox.company_id,
                mailbox_id=mailbox.id,
                directory=load_directory(session, mailbox.company_id),
                blobs=app.blobs,
            )
            result = ingest_batch(session, target, raws)
        report.fetched += len(raws)
        report.messages += result.messages
        report.links += result.links
    log.info("retro %s: %s/%s: %d fetched", report.record, mailbox.id, info.name, len(missing))

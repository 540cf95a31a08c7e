"""The mail a record's addresses bring: link stored mail when an address or domain is
added, remove the links an address made when it is removed.

- Adding: the candidate messages (matching.relink) are relinked in the caller's
  transaction when there are at most `INLINE_LIMIT` of them; above that, in a daemon
  thread of `mailroom serve` that starts once the caller's transaction has committed,
  in chunks of `CHUNK` messages per short transaction, with its progress in
  `relink_progress` (the record page shows it). The CLI always links inline.
- Removing: links of the record that an address or a domain made (reasons `address:…`
  and `domain`) on mail holding a removed address or domain are deleted, then those
  messages go through the matcher again, so a link another of the record's addresses
  still justifies comes back. Links made by hand (`manual`), by a rule (`rule:NAME`) or
  by the thread (`thread`, `case-ref`) stay.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, event, or_, select
from sqlalchemy.orm import Session

from mailroom.app import App
from mailroom.db.engine import transaction
from mailroom.db.models import MessageLink, Record
from mailroom.matching.directory import load_directory
from mailroom.matching.relink import (
    candidate_addresses,
    candidate_messages,
    relink_messages,
)

log = logging.getLogger(__name__)
INLINE_LIMIT = 10_000
CHUNK = 1_000
_progress: dict[int, tuple[int, int]] = {}
_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class LinkReport:
    """What linking the stored mail of a record did: links made now, messages queued."""

    linked: int = 0
    queued: int = 0


def relink_progress(record_id: int) -> tuple[int, int] | None:
    """(messages done, messages in all) of the record's background linking, or None."""
    with _lock:
        return _progress.get(record_id)


def record_candidates(session: Session, record: Record) -> list[int]:
    """Ids of the stored, logged messages that may concern `record` now."""
    session.flush()
    directory = load_directory(session, record.company_id)
    addresses = {a for a in candidate_addresses(session, record) if not directory.is_internal(a)}
    domains = [d.domain for d in record.domains] if record.type == "account" else []
    return candidate_messages(
        session, company_id=record.company_id, addresses=addresses, domains=domains
    )


def link_stored_mail(session: Session, *, record: Record, app: App | None = None) -> LinkReport:
    """Link the stored mail that matches `record`: now, or (with `app`, above
    INLINE_LIMIT messages) in the background once the caller commits."""
    ids = record_candidates(session, record)
    if app is None or len(ids) <= INLINE_LIMIT:
        return LinkReport(
            linked=relink_messages(session, company_id=record.company_id, message_ids=ids)
        )
    company_id, record_id = record.company_id, record.id
    with _lock:
        _progress[record_id] = (0, len(ids))

    state = {"started": False}

    def start(_session: Session) -> None:
        state["started"] = True
        threading.Thread(
            target=_relink_in_background,
            args=(app, company_id, record_id, ids),
            name=f"mailroom-relink-{record_id}",
            daemon=True,
        ).start()

    def forget(_session: Session) -> None:  # the record was not saved: nothing to link
        if not state["started"]:
            with _lock:
                _progress.pop(record_id, None)

    event.listen(session, "after_commit", start, once=True)
    event.listen(session, "after_rollback", forget, once=True)
    return LinkReport(queued=len(ids))


def _relink_in_background(app: App, company_id: int, record_id: int, ids: list[int]) -> None:
    try:
        for start in range(0, len(ids), CHUNK):
            part = ids[start : start + CHUNK]
            with transaction(app.sessions) as session:
                relink_messages(session, company_id=company_id, message_ids=part)
            with _lock:
                _progress[record_id] = (start + len(part), len(ids))
    except Exception:  # the links made so far stay; the page stops showing progress
        log.exception("linking stored mail to record %s failed", record_id)
    finally:
        with _lock:
            _progress.pop(record_id, None)


def unlink_removed(
    session: Session, *, record: Record, addresses: Iterable[str] = (), domains: Iterable[str] = ()
) -> int:
    """Remove the links the removed `addresses`/`domains` made; returns how many went."""
    gone_addresses, gone_domains = sorted(set(addresses)), sorted(set(domains))
    if not gone_addresses and not gone_domains:
        return 0
    session.flush()
    ids = candidate_messages(
        session, company_id=record.company_id, addresses=gone_addresses, domains=gone_domains
    )
    if not ids:
        return 0
    made_by_address = or_(MessageLink.reason.like("address:%"), MessageLink.reason == "domain")
    linked = list(
        session.scalars(
            select(MessageLink.message_id).where(
                MessageLink.record_id == record.id,
                MessageLink.message_id.in_(ids),
                made_by_address,
            )
        )
    )
    if not linked:
        return 0
    session.execute(
        delete(MessageLink).where(
            MessageLink.record_id == record.id, MessageLink.message_id.in_(linked)
        )
    )
    session.flush()
    relink_messages(session, company_id=record.company_id, message_ids=sorted(linked))
    back = session.scalars(
        select(MessageLink.message_id).where(
            MessageLink.record_id == record.id, MessageLink.message_id.in_(linked)
        )
    )
    return len(linked) - len(list(back))


_searches: dict[int, str] = {}


def server_search_state(record_id: int) -> str | None:
    """`running`, or the last search's outcome in words, for the record page; else None."""
    with _lock:
        return _searches.get(record_id)


def start_server_search(app: App, *, record: Record) -> bool:
    """Search the company's mailboxes on the server for the record's addresses (older mail
    never fetched; sync.retro) in a daemon thread of `serve`; False if one already runs."""
    with _lock:
        if _searches.get(record.id) == "running":
            return False
        _searches[record.id] = "running"
    threading.Thread(
        target=_search_server,
        args=(app, record.company_id, record.ref, record.id),
        name=f"mailroom-retro-{record.id}",
        daemon=True,
    ).start()
    return True


def _search_server(app: App, company_id: int, ref: str, record_id: int) -> None:
    from mailroom.sync.retro import backfill_record

    outcome = "The search of the server failed; see the log."
    try:
        report = backfill_record(app, company_id=company_id, ref=ref)
        outcome = (
            f"Searched {report.mailboxes} mailbox(es) on the server: {report.fetched} older "
            f"message(s) fetched, {report.links} link(s) made."
        )
        if report.errors:
            outcome += " Problems: " + "; ".join(report.errors[:3])
    except Exception:
        log.exception("server search for %s failed", ref)
    finally:
        with _lock:
            _searches[record_id] = outcome

"""The mail a record's addresses bring: link stored mail when an address or domain is
added, remove the links an address made when it is removed.

- Adding: the candidate messages (matching.relink) are relinked in the caller's
  transaction when there are at most `INLINE_LIMIT` of them; above that, once the
  caller's transaction has committed, in chunks of `CHUNK` messages per short
  transaction: on SQLite in a daemon thread of `mailroom serve`, on PostgreSQL as a job
  of the workers (`relink_job`, jobs.background). `relink_progress` is what the record
  page shows. The CLI always links inline.
- Removing: links of the record that an address or a domain made (reasons `address:…`
  and `domain`) on mail holding a removed address or domain are deleted, then those
  messages go through the matcher again, so a link another of the record's addresses
  still justifies comes back. Links made by hand (`manual`), by a rule (`rule:NAME`) or
  by the thread (`thread`, `case-ref`) stay.
- Searching the server for older mail (sync.retro): a daemon thread of `serve` on SQLite,
  a job of the workers on PostgreSQL (`retro_job`); `server_search_state` shows it.

On PostgreSQL a job's progress is a `background_runs` row (services.background_runs),
committed with each chunk: any web process shows it, and a job retried after its worker
died resumes after the last chunk committed (relinking is idempotent anyway).
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
from mailroom.services.background_runs import (
    RunKey,
    active,
    finish_run,
    record_progress,
    shown,
    start_run,
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


RELINK = "relink"
RETRO = "retro"


def relink_run(record_id: int) -> RunKey:
    """The background run linking a record's stored mail (PostgreSQL)."""
    return RunKey(RELINK, str(record_id))


def retro_run(record_id: int) -> RunKey:
    """The background run searching the server for a record's mail (PostgreSQL)."""
    return RunKey(RETRO, str(record_id))


def _on_workers(app: App | None) -> bool:
    return app is not None and not app.settings.is_sqlite


def relink_progress(record_id: int, app: App | None = None) -> tuple[int, int] | None:
    """(messages done, messages in all) of the record's background linking, or None
    (with a PostgreSQL `app`: the workers' job, read from the database)."""
    if app is not None and _on_workers(app):
        with app.sessions() as session:
            row = active(session, relink_run(record_id))
            return None if row is None else (row.done, row.total)
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
    if _on_workers(app):
        return _queue_relink(session, app, company_id=company_id, record_id=record_id, ids=ids)
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


def _queue_relink(
    session: Session, app: App, *, company_id: int, record_id: int, ids: list[int]
) -> LinkReport:
    """PostgreSQL: mark the run queued with the caller's transaction; defer its job once
    that commits (the job finds the record and its candidates then)."""
    from mailroom.jobs.background import defer_background
    from mailroom.services.background_runs import queue_run

    run = relink_run(record_id)
    queue_run(session, run, company_id=company_id, total=len(ids))

    def defer(_session: Session) -> None:
        try:  # a job already waiting for the record finds the new candidates too
            defer_background(app, name=RELINK, lock=run.lock, record_id=record_id, chunk=CHUNK)
        except Exception:  # the page shows the run as interrupted
            log.exception("could not queue the linking of record %s", record_id)

    event.listen(session, "after_commit", defer, once=True)
    return LinkReport(queued=len(ids))


def relink_job(
    app: App, *, stop: threading.Event, resume: bool, record_id: int, chunk: int = CHUNK
) -> str:
    """The workers' job linking the record's stored mail, `chunk` messages per
    transaction, each committed with the run's progress; `resume`: after the last chunk
    committed. On `stop` it queues itself again after its chunk."""
    from mailroom.jobs.background import defer_background

    run = relink_run(record_id)
    with transaction(app.sessions) as session:
        record = session.get(Record, record_id)
        if record is None:
            finish_run(session, run, state="done", outcome="The record was deleted.")
            return f"record {record_id}: deleted"
        company_id = record.company_id
        ids = sorted(record_candidates(session, record))
        row = start_run(session, run, company_id=company_id, resume=resume)
        row.total, after = len(ids), row.after
    todo = [i for i in ids if i > after]
    done = len(ids) - len(todo)
    try:
        for start in range(0, len(todo), chunk):
            if stop.is_set():
                defer_background(
                    app, name=RELINK, lock=run.lock, record_id=record_id, chunk=chunk, resume=True
                )
                return f"record {record_id}: {done} of {len(ids)} linked, handed back"
            part = todo[start : start + chunk]
            with transaction(app.sessions) as session:
                relink_messages(session, company_id=company_id, message_ids=part)
                done += len(part)
                record_progress(session, run, after=part[-1], done=done)
    except Exception:  # the links made so far stay; the page says it failed
        log.exception("linking stored mail to record %s failed", record_id)
        with transaction(app.sessions) as session:
            finish_run(session, run, state="failed", outcome="Linking the stored mail failed.")
        return f"record {record_id}: failed"
    with transaction(app.sessions) as session:
        finish_run(session, run, state="done", outcome=f"{len(ids)} messages linked.")
    return f"record {record_id}: {len(ids)} messages linked"


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


def server_search_state(record_id: int, app: App | None = None) -> str | None:
    """`running`, or the last search's outcome in words, for the record page; else None
    (with a PostgreSQL `app`: the workers' job, read from the database)."""
    if app is not None and _on_workers(app):
        with app.sessions() as session:
            row = shown(session, retro_run(record_id))
            if row is None:
                return None
            return "running" if row.state in ("queued", "running") else row.outcome
    with _lock:
        return _searches.get(record_id)


def start_server_search(app: App, *, record: Record) -> bool:
    """Search the company's mailboxes on the server for the record's addresses (older mail
    never fetched; sync.retro): in a daemon thread of `serve` on SQLite, as a job of the
    workers on PostgreSQL; False if one already runs."""
    if _on_workers(app):
        return _queue_server_search(app, company_id=record.company_id, ref=record.ref, id=record.id)
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


def _queue_server_search(app: App, *, company_id: int, ref: str, id: int) -> bool:
    from mailroom.jobs.background import defer_background
    from mailroom.services.background_runs import queue_run

    run = retro_run(id)
    with transaction(app.sessions) as session:
        if active(session, run) is not None:
            return False
        queue_run(session, run, company_id=company_id, total=0)
    return defer_background(
        app, name=RETRO, lock=run.lock, company_id=company_id, ref=ref, record_id=id
    )


def retro_job(
    app: App, *, stop: threading.Event, resume: bool, company_id: int, ref: str, record_id: int
) -> str:
    """The workers' job searching the server for the record's mail. A retried job searches
    again: what the first fetched is stored, so it is not fetched twice (sync.retro)."""
    run = retro_run(record_id)
    with transaction(app.sessions) as session:
        start_run(session, run, company_id=company_id, resume=resume)
    outcome, state = _search_outcome(app, company_id, ref)
    with transaction(app.sessions) as session:
        finish_run(session, run, state=state, outcome=outcome)
    return f"record {ref}: {outcome}"


def _search_outcome(app: App, company_id: int, ref: str) -> tuple[str, str]:
    """What searching the server for the record found, in words, and done or failed."""
    from mailroom.sync.retro import backfill_record

    try:
        report = backfill_record(app, company_id=company_id, ref=ref)
    except Exception:
        log.exception("server search for %s failed", ref)
        return "The search of the server failed; see the log.", "failed"
    outcome = (
        f"Searched {report.mailboxes} mailbox(es) on the server: {report.fetched} older "
        f"message(s) fetched, {report.links} link(s) made."
    )
    if report.errors:
        outcome += " Problems: " + "; ".join(report.errors[:3])
    return outcome, "done"


def _search_server(app: App, company_id: int, ref: str, record_id: int) -> None:
    outcome = "The search of the server failed; see the log."
    try:
        outcome, _state = _search_outcome(app, company_id, ref)
    finally:
        with _lock:
            _searches[record_id] = outcome

"""On PostgreSQL the long runs serve does in threads on SQLite are the workers' jobs:
linking a record's stored mail, searching the server for it, running a rule on stored
mail. Real PostgreSQL, real `mailroom worker` processes, the real Dovecot.

- One run per record or rule waits or runs at a time (its Procrastinate queueing lock;
  a second rule run is refused, a second search answers `started: false`).
- Its progress is read from the database (`background_runs`), as any web process would.
- A worker SIGKILLed mid-run: the stalled-job recovery retries the job on another worker,
  which goes on after the last chunk committed (the rule run's counts end exact, which a
  restart from scratch could not give: the messages already changed would not count).

The sizes that count as large (`INLINE_LIMIT`) and the chunk sizes are lowered here; the
chunk size travels in the job's arguments, so the worker processes use it too.
"""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text

from mailroom.app import App
from mailroom.crm.companies import get_company
from mailroom.crm.records import EmailField
from mailroom.db.engine import transaction
from mailroom.db.models import MessageLink, Record
from mailroom.errors import Conflict
from mailroom.matching.rulebook import add_rule
from mailroom.services import record_links, stored_rules
from mailroom.services.record_links import (
    relink_progress,
    server_search_state,
    start_server_search,
)
from mailroom.services.records import create_record
from mailroom.services.stored_rules import (
    preview_rule_on_stored,
    run_rule_on_stored,
    run_status,
)
from mailroom_testing.builders import build_message
from mailroom_testing.dovecot import DovecotServer
from tests.helpers.matching_kit import ingest, mail, setup
from tests.helpers.sync_support import connect_mailbox
from tests.integration.jobs.test_workers import Workers, wait_for


def jobs_of(app: App, task: str) -> list[tuple[str, int]]:
    """(status, attempts) of the task's jobs."""
    with app.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT status, attempts FROM procrastinate_jobs WHERE task_name = :t"),
            {"t": task},
        )
        return [(str(s), int(a)) for s, a in rows]


def kill(proc: Any) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def store_mail(app: App, mailbox_id: int, count: int, **kw: Any) -> None:
    """`count` messages from jo@client.example, subjects alternating quote / hello."""
    made = [
        mail(subject=("Quote " if n % 3 else "Hello ") + str(n), minutes=n, **kw)
        for n in range(count)
    ]
    for start in range(0, count, 100):
        ingest(app, mailbox_id, *made[start : start + 100])


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_a_rule_run_is_a_job_resumed_on_another_worker_after_a_kill_with_exact_counts(
    queue_app: App, workers: Workers, monkeypatch: pytest.MonkeyPatch, how: signal.Signals
) -> None:
    """SIGKILL: the stalled job is retried by recovery; SIGTERM: the run ends after its
    batch and queues itself again (hand-back). Either way the next worker resumes."""
    ids = setup(queue_app)
    store_mail(queue_app, ids.ann_box, 600)
    with transaction(queue_app.sessions) as session:
        company = get_company(session, "Acme")
        add_rule(
            session,
            company=company,
            name="no-quotes",
            action="ignore",
            conditions={"subject_contains": "quote"},
        )
        company_id = company.id
    with queue_app.sessions() as session:
        preview = preview_rule_on_stored(
            session, company_id=company_id, name="no-quotes", blobs=queue_app.blobs
        )
    assert (preview.affected, preview.scanned) == (400, 600)  # independent: n % 3 != 0
    monkeypatch.setattr(stored_rules, "INLINE_LIMIT", 1)
    monkeypatch.setattr(stored_rules, "BATCH", 2)

    started = run_rule_on_stored(
        queue_app, company_id=company_id, name="no-quotes", background=True
    )
    assert (started.state, started.background, started.scanned) == ("running", True, 0)
    with pytest.raises(Conflict, match="already running"):  # queued: one run at a time
        run_rule_on_stored(queue_app, company_id=company_id, name="no-quotes", background=True)

    def status() -> stored_rules.RunStatus:
        found = run_status(company_id=company_id, name="no-quotes", app=queue_app)
        assert found is not None
        return found

    assert status().state == "running"  # queued shows as running, as on SQLite
    first = workers.start()
    wait_for("saw the run mid-way", lambda: 20 <= status().scanned <= 300, workers)
    with pytest.raises(Conflict, match="already running"):  # and while it runs
        run_rule_on_stored(queue_app, company_id=company_id, name="no-quotes", background=True)
    first.send_signal(how)
    assert first.wait(60) == (0 if how == signal.SIGTERM else -signal.SIGKILL)
    at_kill = status()
    assert at_kill.state == "running" and 0 < at_kill.scanned < 600
    second = workers.start()
    wait_for("finished the run on the second worker", lambda: status().state != "running", workers)
    done = status()
    if how == signal.SIGKILL:
        assert "stalled: its worker is gone" in workers.log(second)
    else:
        assert "handed back" in workers.log(first)
    assert jobs_of(queue_app, "mailroom.rule_on_stored") == []  # succeeded, deleted
    assert (done.state, done.scanned, done.total) == ("done", 600, 600)
    assert done.affected == preview.affected  # resumed after the last committed batch
    with queue_app.sessions() as session:
        again = preview_rule_on_stored(
            session, company_id=company_id, name="no-quotes", blobs=queue_app.blobs
        )
    assert again.affected == 0


def test_linking_a_records_stored_mail_is_a_job_that_survives_a_killed_worker(
    queue_app: App, workers: Workers, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = setup(queue_app)
    store_mail(queue_app, ids.ann_box, 800)
    monkeypatch.setattr(record_links, "INLINE_LIMIT", 5)
    monkeypatch.setattr(record_links, "CHUNK", 2)
    with transaction(queue_app.sessions) as session:
        made = create_record(
            session,
            viewer=None,
            company_id=ids.company_id,
            record_type="lead",
            name="Jo",
            emails=[EmailField("main", "jo@client.example")],
            app=queue_app,
        )
        record_id = made.record.id
    assert (made.linked, made.queued) == (0, 800)
    assert relink_progress(record_id, queue_app) == (0, 800)  # queued, shown as 0 of 800

    def linked() -> int:
        with queue_app.sessions() as session:
            return (
                session.scalar(
                    select(func.count())
                    .select_from(MessageLink)
                    .where(MessageLink.record_id == record_id)
                )
                or 0
            )

    first = workers.start()
    seen: list[tuple[int, int]] = []

    def midway() -> bool:
        progress = relink_progress(record_id, queue_app)
        if progress is not None:
            seen.append(progress)
        return progress is not None and 20 <= progress[0] <= 700

    wait_for("saw the linking mid-way", midway, workers)
    kill(first)
    at_kill = linked()
    assert 0 < at_kill < 800
    second = workers.start()
    wait_for("finished linking", lambda: relink_progress(record_id, queue_app) is None, workers)
    assert "stalled: its worker is gone" in workers.log(second)
    assert linked() == 800  # every message once (links are unique per message and record)
    assert all(total == 800 for _done, total in seen)


def test_a_server_search_is_a_job_queued_once_and_its_outcome_is_shown(
    queue_app: App, dovecot: DovecotServer, imap_user: tuple[str, str], workers: Workers
) -> None:
    login = imap_user[0]
    old = datetime.now(UTC) - timedelta(days=400)
    for n in range(2):
        data = build_message(
            sender="sue@client.example", to=f"{login}@acme.example", subject=f"Old {n}", minutes=n
        )
        dovecot.append(login, "INBOX", data, internaldate=old)
    since = (datetime.now(UTC) - timedelta(days=30)).date()
    connect_mailbox(queue_app, dovecot, imap_user, since=since, folders=("INBOX",))
    with transaction(queue_app.sessions) as session:
        made = create_record(
            session,
            viewer=None,
            company_id=get_company(session, "Acme").id,
            record_type="contact",
            name="Sue",
            emails=[EmailField("main", "sue@client.example")],
            app=queue_app,
        )
        record_id = made.record.id
    with queue_app.sessions() as session:
        record = session.get(Record, record_id)
        assert record is not None
        assert start_server_search(queue_app, record=record) is True
        assert start_server_search(queue_app, record=record) is False  # one waits already
    assert server_search_state(record_id, queue_app) == "running"
    workers.start()
    wait_for(
        "saw the search end",
        lambda: server_search_state(record_id, queue_app) != "running",
        workers,
    )
    outcome = server_search_state(record_id, queue_app) or ""
    assert "Searched 1 mailbox(es) on the server: 2 older message(s) fetched" in outcome
    with queue_app.sessions() as session:
        reasons = session.scalars(
            select(MessageLink.reason).where(MessageLink.record_id == record_id)
        ).all()
    assert reasons == ["address:main", "address:main"]
    # Started again after the first ended: runs, and fetches nothing twice.
    with queue_app.sessions() as session:
        record = session.get(Record, record_id)
        assert record is not None
        assert start_server_search(queue_app, record=record) is True
    wait_for(
        "saw the second search end",
        lambda: "0 older message(s) fetched" in (server_search_state(record_id, queue_app) or ""),
        workers,
    )

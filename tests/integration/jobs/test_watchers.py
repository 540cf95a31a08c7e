"""Which workers the IDLE watchers are spread over (jobs/watch.py): only live workers
that watch. A worker serving only `chores` runs no watchers; counted among the live
workers it was given mailboxes nobody then watched (they were only polled)."""

from __future__ import annotations

from sqlalchemy import text

from mailroom.app import App
from mailroom.db.engine import transaction
from mailroom.jobs.status import list_workers
from mailroom.jobs.watch import live_watchers, register_watcher, share


def add_workers(app: App, *ages: int) -> list[int]:
    """Procrastinate worker rows whose last heartbeat is `age` seconds old; their ids."""
    with transaction(app.sessions) as session:
        return [
            int(
                session.execute(
                    text(
                        "INSERT INTO procrastinate_workers (last_heartbeat) "
                        "VALUES (now() - make_interval(secs => :age)) RETURNING id"
                    ),
                    {"age": age},
                ).scalar_one()
            )
            for age in ages
        ]


def test_mailboxes_go_only_to_live_workers_that_watch(queue_app: App) -> None:
    syncing, chores_only, dead = add_workers(queue_app, 0, 0, 600)
    with transaction(queue_app.sessions) as session:
        register_watcher(session, worker_id=syncing, process="a:1")
        register_watcher(session, worker_id=dead, process="c:3")
        register_watcher(session, worker_id=syncing, process="a:1")  # every tick: idempotent
    with queue_app.sessions() as session:
        live = live_watchers(session, stalled_after=30)
    assert live == [syncing] and chores_only not in live and dead not in live
    wanted = {(mailbox, folder) for mailbox in range(1, 41) for folder in ("INBOX", "Sent")}
    assert share(wanted, live, syncing) == wanted
    with queue_app.sessions() as session:  # `mailroom workers --json` says who watches
        listed = {w.id: w.watching for w in list_workers(session, stalled_after=30)}
    assert listed == {syncing: "a:1", chores_only: None, dead: "c:3"}


def test_rows_of_workers_procrastinate_forgot_are_dropped(queue_app: App) -> None:
    (gone,) = add_workers(queue_app, 0)
    with transaction(queue_app.sessions) as session:
        register_watcher(session, worker_id=gone, process="b:2")
        session.execute(text("DELETE FROM procrastinate_workers WHERE id = :id"), {"id": gone})
    (me,) = add_workers(queue_app, 0)
    with transaction(queue_app.sessions) as session:
        register_watcher(session, worker_id=me, process="a:1")
    with queue_app.sessions() as session:
        rows = session.execute(text("SELECT worker_id FROM idle_watchers")).scalars().all()
    assert rows == [me]

"""`mailroom worker` and `mailroom workers` (the PostgreSQL mode's job processes)."""

from __future__ import annotations

import typer

from mailroom.cli.common import console, get_app, print_json


def worker(
    concurrency: int = typer.Option(4, "--concurrency", min=1, help="Jobs run at once."),
    queues: list[str] = typer.Option(
        None, "--queues", help="Only these queues (sync, chores); default both. Repeatable."
    ),
) -> None:
    """Run background jobs (mailbox syncs, sends, retention) on PostgreSQL until stopped."""
    from mailroom.services.workers import run_worker

    run_worker(app=get_app(), concurrency=concurrency, queues=queues or None)


def workers(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the live workers, their current jobs and mailboxes, and the queue depth."""
    from mailroom.services.workers import list_workers

    app = get_app()
    with app.sessions() as session:
        found = list_workers(session=session, app=app)
    if as_json:
        print_json(found)
        return
    depth = ", ".join(f"{q}: {n}" for q, n in sorted(found["queue_depth"].items())) or "empty"
    console.print(f"{len(found['workers'])} live workers; queued jobs: {depth}")
    for w in found["workers"]:
        jobs = "; ".join(
            f"job {j['id']} {j['task']}"
            + (f" mailbox {j['mailbox_id']} ({j['claim']})" if j["mailbox_id"] else "")
            for j in w["jobs"]
        )
        watching = f"; IDLE watchers in {w['watching']}" if w["watching"] else ""
        console.print(
            f"worker {w['id']}: heartbeat {w['last_heartbeat']}{watching}; {jobs or 'idle'}"
        )


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
    app.command("workers")(workers)

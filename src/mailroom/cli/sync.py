"""`mailroom sync --once`, `mailroom sync --now ID` and `mailroom serve`."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING

import typer

from mailroom.cli.common import console, err_console, get_app

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from mailroom.sync.engine import ProgressEvent, SyncReport


def _print_report(report: SyncReport) -> None:
    if report.paused_until is not None and report.error:  # a quota: no error, a pause
        from mailroom.sync.health import diagnose

        console.print(
            f"Mailbox {report.mailbox_id}: paused until {report.paused_until:%Y-%m-%d %H:%M} "
            f"UTC, then it resumes by itself ({report.fetched} fetched before the pause)."
        )
        console.print(f"  Why: {diagnose(report.error, mailbox_id=report.mailbox_id).hint}")
        return
    if report.error:
        err_console.print(f"Mailbox {report.mailbox_id}: [red]{report.error.message}[/]")
        from mailroom.sync.health import diagnose

        err_console.print(f"  Fix: {diagnose(report.error, mailbox_id=report.mailbox_id).hint}")
        return
    if report.skipped:
        why = {
            "busy": "already being synced by another process",
            "waiting": "waiting for a free slot under the company's mailbox limit",
            "failed": "failed; edit its credentials (`mailroom mailbox edit`) to retry",
            "disabled": "disabled",
            "sign-in": "its OAuth sign-in was revoked; sign in again with "
            f"`mailroom mailbox reconnect {report.mailbox_id}`",
            "paused": "paused: Gmail's daily download limit is used up; it resumes by itself "
            "at the time `mailroom mailbox list` shows",
        }[report.skipped]
        console.print(f"Mailbox {report.mailbox_id}: skipped, {why}.")
        return
    gone = f", {report.gone} gone from the server" if report.gone else ""
    console.print(
        f"Mailbox {report.mailbox_id}: {report.fetched} fetched, {report.messages} new messages, "
        f"{report.copies} new copies, {report.links} new links{gone}."
    )


class _Bars:
    """A Rich progress bar per mailbox (done/total messages, bytes) on a terminal."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[int, TaskID] = {}

    def __call__(self, event: ProgressEvent) -> None:
        task = self.tasks.get(event.mailbox_id)
        if task is None:
            task = self.progress.add_task(f"Mailbox {event.mailbox_id}", total=event.total)
            self.tasks[event.mailbox_id] = task
        mib = f"{event.done_bytes / 2**20:.1f}/{event.total_bytes / 2**20:.1f} MiB"
        self.progress.update(
            task,
            completed=event.done,
            total=max(event.total, 1),
            description=f"Mailbox {event.mailbox_id} {event.folder} ({mib})",
        )


def sync(
    once: bool = typer.Option(False, "--once", help="Sync, then exit."),
    now: int = typer.Option(
        None, "--now", metavar="ID", help="Ask the running `mailroom serve` to sync ID now."
    ),
    mailbox: int = typer.Option(None, "--mailbox", help="Only this mailbox id."),
    batch_size: int = typer.Option(
        None,
        "--batch-size",
        min=1,
        help="Messages per committed batch (memory bound); default 200, 1,000 for a large "
        "fetch (which fetch workers stage on disk), at most 16 MB of mail either way.",
    ),
) -> None:
    """Sync every enabled mailbox (or one) once; or ask `mailroom serve` to sync one now."""
    app = get_app()
    if now is not None:
        from mailroom.services.mailboxes import sync_now

        with app.sessions() as session:
            sync_now(session=session, app=app, mailbox_id=now, here=False)
        who = (
            "a running `mailroom serve` starts it within 2 seconds"
            if app.settings.is_sqlite
            else "queued at high priority: the next free `mailroom worker` starts it"
        )
        console.print(f"Asked for a sync of mailbox {now}: {who} (see `mailroom mailbox list`).")
        return
    if not once:
        raise typer.BadParameter("use --once, or --now ID (continuous sync runs in `serve`)")
    from mailroom.sync.engine import sync_all, sync_mailbox

    bars: _Bars | None = None
    display: AbstractContextManager[object] = nullcontext()
    if console.is_terminal:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        live = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console
        )
        bars, display = _Bars(live), live
    with display:
        if mailbox is not None:
            reports = [sync_mailbox(app, mailbox, progress=bars, force=True, batch_size=batch_size)]
        else:
            reports = sync_all(app, progress=bars, batch_size=batch_size)
    for report in reports:
        _print_report(report)
    failed = [r.error for r in reports if r.error and r.paused_until is None]
    if failed:
        raise typer.Exit(max(e.exit_code for e in failed))


def serve(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8025, "--port"),
    interval: int = typer.Option(300, "--interval", help="Seconds between polls of a mailbox."),
    smtp_port: int = typer.Option(
        2525, "--smtp-port", help="Port of the BCC/forward drop-address SMTP receiver (0: off)."
    ),
    workers: int = typer.Option(
        0,
        "--workers",
        min=0,
        help="PostgreSQL: also start N `mailroom worker` processes (serve itself never syncs).",
    ),
) -> None:
    """Run Mailroom: the web dashboard and API, the sync scheduler, the drop-address
    SMTP receiver and the outbox worker.

    On PostgreSQL the background jobs (syncs, sends, retention) run in `mailroom worker`
    processes instead: serve runs the web, the API and the drop address.
    """
    from mailroom.web.server import run_server

    run_server(
        get_app(), host=host, port=port, interval=interval, smtp_port=smtp_port, workers=workers
    )


def register(app: typer.Typer) -> None:
    app.command("sync")(sync)
    app.command("serve")(serve)

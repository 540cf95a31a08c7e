"""`mailroom sync` and `mailroom serve`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from mailroom.cli.common import console, err_console, get_app

if TYPE_CHECKING:
    from mailroom.sync.engine import SyncReport


def _print_report(report: SyncReport) -> None:
    if report.error:
        err_console.print(f"Mailbox {report.mailbox_id}: [red]{report.error.message}[/]")
        if report.error.hint:
            err_console.print(f"  Fix: {report.error.hint}")
        return
    console.print(
        f"Mailbox {report.mailbox_id}: {report.fetched} fetched, {report.messages} new messages, "
        f"{report.copies} new copies, {report.links} new links."
    )


def sync(
    once: bool = typer.Option(False, "--once", help="Sync, then exit."),
    mailbox: int = typer.Option(None, "--mailbox", help="Only this mailbox id."),
) -> None:
    """Sync every enabled mailbox (or one) once, then exit."""
    if not once:
        raise typer.BadParameter("use --once (continuous sync runs inside `mailroom serve`)")
    from mailroom.sync.engine import sync_all, sync_mailbox

    app = get_app()
    reports = [sync_mailbox(app, mailbox)] if mailbox is not None else sync_all(app)
    for report in reports:
        _print_report(report)
    failed = [r for r in reports if r.error]
    if failed:
        raise typer.Exit(max(r.error.exit_code for r in failed if r.error))


def serve(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8025, "--port"),
    interval: int = typer.Option(300, "--interval", help="Seconds between polls of a mailbox."),
) -> None:
    """Run Mailroom: the scheduler that keeps mailboxes synced, and the web server."""
    from mailroom.web.server import run_server

    run_server(get_app(), host=host, port=port, interval=interval)


def register(app: typer.Typer) -> None:
    app.command("sync")(sync)
    app.command("serve")(serve)

"""The `mailroom` command line: one Typer app, sub-commands in sibling modules.

Exit codes (the CLI contract): 0 success; 1 a user error (bad argument, unknown record,
bad file); 2 a failure of a server or of the system. Errors go to stderr as one line
saying what happened and, when there is one, a line saying how to fix it.
"""

from __future__ import annotations

import logging
import sys

import typer

from mailroom.cli import admin, mailbox, privacy, records, sync, token
from mailroom.cli import backfill as backfill_cli
from mailroom.cli import blocklist as blocklist_cli
from mailroom.cli import rules as rules_cli
from mailroom.cli import send as send_cli
from mailroom.cli import why as why_cli
from mailroom.cli.common import STATE, err_console
from mailroom.errors import MailroomError

app = typer.Typer(
    name="mailroom",
    help="Sync a team's mailboxes into its CRM timelines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _global(
    data_dir: str = typer.Option(
        None, "--data-dir", help="Data directory (default: $MAILROOM_DATA_DIR or ./mailroom-data)."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress to stderr."),
) -> None:
    STATE.data_dir = data_dir
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


admin.register(app)
records.register(app)
backfill_cli.register(app)
mailbox.register(app)
sync.register(app)
token.register(app)
privacy.register(app)
rules_cli.register(app)
blocklist_cli.register(app)
why_cli.register(app)
send_cli.register(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    try:
        result = app(args=argv, prog_name="mailroom", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except MailroomError as exc:
        err_console.print(f"[bold red]Error:[/] {exc.message}", highlight=False, markup=True)
        if exc.hint:
            err_console.print(f"[bold]Fix:[/] {exc.hint}", highlight=False)
        code = exc.exit_code
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.Abort:
        err_console.print("Aborted.")
        code = 1
    except typer.TyperException as exc:  # usage errors: bad option, missing argument
        show = getattr(exc, "show", None)
        if callable(show):
            show(file=sys.stderr)
        else:
            err_console.print(f"Error: {exc}")
        code = 0 if exc.__class__.__name__ == "NoArgsIsHelpError" else 1
    finally:
        STATE.close()
    if argv is None:
        sys.exit(code)
    return code

"""The `mailroom` command line: one Typer app, sub-commands in sibling modules.

Exit codes (the CLI contract): 0 success; 1 a user error (bad argument, unknown record,
bad file); 2 a failure of a server or of the system. Errors go to stderr as one line
saying what happened and, when there is one, a line saying how to fix it.
"""

from __future__ import annotations

import gc
import importlib
import sys
from collections.abc import Iterator, MutableMapping
from typing import Any

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

from mailroom.cli.common import STATE, err_console
from mailroom.cli.params import use_plain_values
from mailroom.errors import MailroomError

# The sibling modules that register commands, in the order they always registered them
# (it decides the order of a group's commands in its help, e.g. `mailbox disconnect`
# from privacy.py before `mailbox smtp` from send.py: so whatever loads send.py loads
# privacy.py first, whichever command a process loads first).
MODULES = (
    "admin",
    "records",
    "backfill",
    "mailbox",
    "sync",
    "token",
    "privacy",
    "rules",
    "blocklist",
    "why",
    "send",
    "oauth",
    "worker",
    "report",
)

# Every top-level command: the modules whose `register` adds it or adds to it, and its
# one-line help (the first sentence of its docstring or group help), so that `mailroom
# --help` lists them without importing any of them. tests/interfaces/cli/test_startup.py checks this
# table against the commands the modules really register.
COMMANDS: dict[str, tuple[tuple[str, ...], str]] = {
    "init": (
        ("admin",),
        "Create the data dir, the database schema and the credential key (mode 0600).",
    ),
    "timeline": (("records",), "A record's email timeline, newest first."),
    "sync": (
        ("sync",),
        "Sync every enabled mailbox (or one) once; or ask `mailroom serve` to sync one now.",
    ),
    "serve": (
        ("sync",),
        "Run Mailroom: the web dashboard and API, the sync scheduler, the drop-address "
        "SMTP receiver and the outbox worker.",
    ),
    "why": (
        ("why",),
        "Every record a message links to and why, or the filter or rule that skipped it.",
    ),
    "link": (
        ("why",),
        "Link a message to a record by hand (reason `manual`; survives every re-sync).",
    ),
    "unlink": (("why",), "Remove a link by hand; automation never adds it again."),
    "send": (
        ("privacy", "send"),
        "Send a message through the mailbox's SMTP server; prints its Message-ID.",
    ),
    "worker": (
        ("worker",),
        "Run background jobs (mailbox syncs, sends, retention) on PostgreSQL until stopped.",
    ),
    "workers": (
        ("worker",),
        "List the live workers, their current jobs and mailboxes, and the queue depth.",
    ),
    "company": (("admin", "privacy", "send"), "Companies (tenants) and their internal domains."),
    "user": (("admin",), "People who sign in and own mailboxes."),
    "records": (
        ("records", "backfill"),
        "CRM records: leads, contacts, accounts, cases, opportunities.",
    ),
    "mailbox": (("mailbox", "privacy", "send"), "Connected mailboxes."),
    "token": (("token",), "API tokens (Authorization: Bearer TOKEN)."),
    "privacy": (("privacy",), "Who sees which email: transparent or strict."),
    "retention": (("privacy",), "How long email linked to no record is kept."),
    "rules": (
        ("rules",),
        "Rules (ignore, create, extract, assign, tag) and matching settings.",
    ),
    "blocklist": (("blocklist",), "Addresses and @domains whose mail is never logged."),
    "outbox": (("privacy", "send"), "Messages sent from Mailroom, and sending limits."),
    "oauth": (("oauth",), "OAuth clients for signing in Google and Microsoft mailboxes."),
    "report": (("report",), "Reports: mail sent and received."),
}

# Plain help (rich_markup_mode=None): Rich's help panels cost more to import than Typer
# itself, and every command's help is built from this instance's setting.
_registry = typer.Typer(rich_markup_mode=None)
_registered: set[str] = set()


def load_command(name: str) -> Any:
    """Import the modules that make up top-level command `name`; its Click command."""
    needed = COMMANDS[name][0]
    for module in MODULES:
        if module in needed and module not in _registered:
            importlib.import_module(f"mailroom.cli.{module}").register(_registry)
            _registered.add(module)
    command = typer.main.get_group(_registry).commands[name]
    _whole_short_help(command)
    use_plain_values(command)
    return command


def one_line_help(help_text: str | None) -> str:
    """A command's first help paragraph on one line: what a group lists for it."""
    return " ".join((help_text or "").split("\n\n")[0].split())


def _whole_short_help(command: Any) -> None:
    """List each command with its whole first help paragraph, wrapped, as Rich's help did
    (Click's plain listing would cut it at the first line's width)."""
    if command.short_help is None:
        command.short_help = one_line_help(command.help)
    for sub in getattr(command, "commands", {}).values():
        _whole_short_help(sub)


class _LazyCommands(MutableMapping[str, Any]):
    """The root group's commands: every name in COMMANDS, each loaded when first looked up."""

    def __init__(self) -> None:
        self.loaded: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self.loaded:
            if name not in COMMANDS:
                raise KeyError(name)
            self.loaded[name] = load_command(name)
        return self.loaded[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self.loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self.loaded[name]

    def __iter__(self) -> Iterator[str]:
        yield from COMMANDS
        yield from (name for name in self.loaded if name not in COMMANDS)

    def __len__(self) -> int:
        return len(set(COMMANDS) | set(self.loaded))


class LazyGroup(TyperGroup):
    """The root group: imports a command's module only when that command runs.

    Click's "lazy loading subcommands" pattern: `get_command` (used to run a command, or
    to show its own help) imports it; listing the commands (`mailroom --help`, the
    "Did you mean" hint) uses the names and one-line help in COMMANDS.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.commands = _LazyCommands()
        use_plain_values(self, subcommands=False)

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        loaded = self.commands.loaded if isinstance(self.commands, _LazyCommands) else {}
        rows = [
            (name, loaded.get(name) or TyperCommand(name, short_help=COMMANDS[name][1]))
            for name in self.list_commands(ctx)
        ]
        rows = [(name, cmd) for name, cmd in rows if not cmd.hidden]
        if not rows:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in rows)
        with formatter.section("Commands"):
            formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in rows])


app = typer.Typer(
    name="mailroom",
    help="Sync a team's mailboxes into its CRM timelines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    cls=LazyGroup,
)


@app.callback()
def _global(
    data_dir: str = typer.Option(
        None, "--data-dir", help="Data directory (default: $MAILROOM_DATA_DIR or ./mailroom-data)."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress to stderr."),
) -> None:
    import logging  # here, not at the top: `mailroom --help` never logs

    _resume_gc()  # the command is loaded (resolved before this callback runs)
    STATE.data_dir = data_dir
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


# Whether main() paused the cyclic garbage collector (see _pause_gc).
_gc_paused = False
# The collector's thresholds once the command is loaded. CPython's default (700, 10, 10)
# ran a young collection every 700 net allocations and a full one every 70,000 or so; a
# sync batch makes and drops some 10^6 objects (parses, rows, statements), nearly none in
# cycles. At 20,000 messages these thresholds cut the initial sync's CPU by 0.87x (two
# interleaved pairs, bench/README.md "Round 4"), at 5 MB more peak memory.
GC_THRESHOLDS = (50_000, 20, 100)


def _pause_gc() -> None:
    """Pause the cyclic garbage collector while the command loads (a process's start).

    Loading a command imports SQLAlchemy, the models and the command's modules: some 10^5
    objects that live as long as the process and are hardly ever garbage, which the
    collector would scan again and again while they are made, then on every full
    collection, and once more when the interpreter exits. Measured on `timeline`: a
    fifth of its CPU time. So main() (the console script, not a caller passing argv)
    pauses it, and `_resume_gc` moves what loading made to the collector's permanent
    generation (gc.freeze, as CPython's docs suggest for objects that live for the
    whole process) before turning it back on, with `GC_THRESHOLDS`.
    """
    global _gc_paused
    if gc.isenabled():
        gc.disable()
        _gc_paused = True


def _resume_gc() -> None:
    global _gc_paused
    if _gc_paused:
        _gc_paused = False
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        gc.enable()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    if argv is None:
        _pause_gc()
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
        _resume_gc()
        STATE.close()
    if argv is None:
        gc.freeze()  # what the command made: the exiting interpreter need not scan it
        sys.exit(code)
    return code

"""The CLI starts by importing only what the command it runs needs (no timings here).

- `mailroom --help` lists every command, with its one-line help, without importing any
  command module, SQLAlchemy, Alembic, Rich, pydantic, argon2, cryptography or the web;
- the commands, their help and their options are the ones recorded before lazy loading
  (cli_surface.json beside this file: every command path, its sub-commands with their first help
  paragraph, its options and arguments), whichever order commands are loaded in;
- `timeline` on a current database, and every fetch worker, import neither Alembic nor
  the matching rules, the web, Rich or pydantic;
- `db.migrate.HEAD` is Alembic's head revision;
- the plain-value conversion (cli/params.py) gives what Typer's own gives.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.main

from mailroom.app import App
from mailroom.cli import COMMANDS, app, load_command, main, one_line_help
from mailroom.cli.common import console
from mailroom.cli.params import NOT_PLAIN, PlainValues, plain_value

SURFACE = Path(__file__).with_name("cli_surface.json")
HEAVY = (
    "sqlalchemy",
    "alembic",
    "rich",
    "pydantic",
    "argon2",
    "cryptography",
    "fastapi",
    "starlette",
    "uvicorn",
    "jinja2",
    "tldextract",
    "mailroom.app",
    "mailroom.db",
    "mailroom.web",
)


def loaded_after(code: str, *, env: dict[str, str] | None = None) -> tuple[list[str], str]:
    """Run `code` in a fresh interpreter; the modules it loaded, and its stdout."""
    probe = (
        f"{code}\nimport json, sys\n"
        "sys.stderr.write('\\nMODULES ' + json.dumps(sorted(sys.modules)) + '\\n')"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=dict(os.environ, COLUMNS="100", **(env or {})),
        timeout=120,
    )
    assert "MODULES " in run.stderr, run.stderr
    modules = json.loads(run.stderr.rsplit("MODULES ", 1)[1])
    return modules, run.stdout


def heavy_in(modules: list[str], names: tuple[str, ...] = HEAVY) -> list[str]:
    return [m for m in modules if any(m == n or m.startswith(n + ".") for n in names)]


def surface(command: Any = None) -> dict[str, Any]:
    """Every command path: its sub-commands with their one-line help, its parameters."""
    out: dict[str, Any] = {}

    def walk(cmd: Any, path: list[str], parent: Any) -> None:
        ctx = typer.Context(cmd, info_name=path[-1] if path else "mailroom", parent=parent)
        entry: dict[str, Any] = {
            "params": sorted(o for p in cmd.params for o in (p.opts + p.secondary_opts)),
            "commands": [],
        }
        out[" ".join(path)] = entry
        if hasattr(cmd, "list_commands"):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                entry["commands"].append([name, one_line_help(sub.help)])
                walk(sub, [*path, name], ctx)

    walk(command or typer.main.get_command(app), [], None)
    return out


EAGER = """
import importlib, json, typer, typer.main
from mailroom.cli import MODULES, _global
from tests.interfaces.cli.test_startup import surface
eager = typer.Typer(rich_markup_mode=None, add_completion=False)
eager.callback()(_global)
for module in MODULES:
    importlib.import_module(f"mailroom.cli.{module}").register(eager)
print(json.dumps(surface(typer.main.get_command(eager))))
"""


def test_help_lists_every_command_and_imports_none_of_them() -> None:
    modules, out = loaded_after("from mailroom.cli import main; main(['--help'])")
    assert heavy_in(modules) == []
    assert [m for m in modules if m.startswith("mailroom.cli.")] == [
        "mailroom.cli.common",
        "mailroom.cli.params",
    ]
    listed = " ".join(out.split())
    root = json.loads(SURFACE.read_text())[""]
    for name, help_text in root["commands"]:
        assert f" {name} {help_text}" in listed
    for option in ("--data-dir", "--verbose", "--help"):
        assert option in out


def test_commands_help_and_options_are_the_recorded_ones() -> None:
    # After a deliberate change to the commands:
    # `.venv/bin/python tests/interfaces/cli/test_startup.py` rewrites cli_surface.json
    # beside it (review its diff).
    assert surface() == json.loads(SURFACE.read_text())


def test_every_registered_command_is_in_the_table() -> None:
    # What the modules register when all are loaded at once (as before lazy loading),
    # against the lazy CLI: a command added to a module but not to COMMANDS fails here.
    root = Path(__file__).resolve().parents[3]
    run = subprocess.run(
        [sys.executable, "-c", EAGER], capture_output=True, text=True, cwd=root, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == surface()


def test_the_static_table_says_what_the_commands_say() -> None:
    recorded = json.loads(SURFACE.read_text())[""]["commands"]
    assert [[name, text] for name, (_, text) in COMMANDS.items()] == recorded
    for name, (_, text) in COMMANDS.items():
        assert one_line_help(load_command(name).help) == text


def test_group_help_keeps_the_order_whichever_command_loaded_first(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # send.py and privacy.py both add to `mailbox`; loading `send` first must not put
    # `smtp` before `disconnect`.
    code = "from mailroom.cli import main; main(['outbox', '--help']); main(['mailbox', '--help'])"
    _, out = loaded_after(code)
    assert out.index("disconnect") < out.index("smtp")


def test_usage_errors_and_exit_codes_are_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no-such-command"]) == 1
    assert "No such command 'no-such-command'." in capsys.readouterr().err
    assert main(["mailbx"]) == 1
    assert "Did you mean 'mailbox'?" in capsys.readouterr().err
    assert main(["timeline"]) == 1
    assert "Missing argument 'record'." in capsys.readouterr().err
    assert main(["mailbox", "test", "x"]) == 1
    assert "Invalid value for 'ID'" in capsys.readouterr().err
    assert main(["sync", "--once", "--batch-size", "0"]) == 1
    assert "greater than or equal to 1" in capsys.readouterr().err
    assert main([]) == 0  # help on stderr, as before
    assert "Commands:" in capsys.readouterr().err


def test_timeline_on_a_current_database_imports_no_alembic_or_matching(
    sqlite_app: App,
) -> None:
    data = str(sqlite_app.settings.data_dir)
    code = (
        "from mailroom.cli import main\n"
        "assert main(['--data-dir', " + repr(data) + ", 'timeline', 'jo@client.example',"
        " '--json']) == 1"  # no such record: a user error after the query
    )
    key = {"MAILROOM_SECRET_KEY": sqlite_app.settings.secret_key_b64 or ""}
    modules, _ = loaded_after(code, env=key)
    assert "sqlalchemy.orm" in modules  # it did open the database
    unwanted = (
        "alembic",
        "pydantic",
        "argon2",
        "cryptography",
        "fastapi",
        "mailroom.web",
        "tldextract",
        "mailroom.matching.relink",
        "mailroom.crm.csv_import",
    )
    assert heavy_in(modules, unwanted) == []


def test_a_sync_that_fetches_nothing_loads_no_ingest_matching_or_fetch_workers(
    sqlite_app: App,
) -> None:
    data = str(sqlite_app.settings.data_dir)
    code = (
        "from mailroom.cli import main\nmain(['--data-dir', " + repr(data) + ", 'sync', '--once'])"
    )
    key = {"MAILROOM_SECRET_KEY": sqlite_app.settings.secret_key_b64 or ""}
    modules, _ = loaded_after(code, env=key)
    assert "mailroom.sync.folders" in modules  # the sync path itself is loaded
    unwanted = (
        "alembic",
        "fastapi",
        "mailroom.web",
        "mailroom.ingest.batch",  # the pipeline (ingest.counts, plain counters, may load)
        "mailroom.ingest.store",
        "mailroom.ingest.actions",
        "mailroom.matching",
        "mailroom.sync.fetch_worker",
        "mailroom.sync.prefetch",
    )
    assert heavy_in(modules, unwanted) == []


def test_a_fetch_worker_imports_only_the_fetch_path() -> None:
    modules, _ = loaded_after("import mailroom.sync.fetch_worker, mailroom.connectors.imap")
    unwanted = (
        "sqlalchemy",
        "typer",
        "rich",
        "pydantic",
        "mailroom.cli",
        "mailroom.web",
        "mailroom.db",
        "mailroom.app",
        "mailroom.matching",
        "mailroom.crm",
    )
    assert heavy_in(modules, unwanted) == []


def test_head_is_alembics_head() -> None:
    from mailroom.db.migrate import HEAD, script_head

    assert script_head() == HEAD


def test_a_new_database_is_upgraded_and_then_current(tmp_path: Path) -> None:
    from sqlalchemy import create_engine

    from mailroom.db.migrate import HEAD, is_current, stored_revisions, upgrade

    engine = create_engine(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    assert not is_current(engine)
    upgrade(engine)
    with engine.connect() as conn:
        assert stored_revisions(conn) == [HEAD]
    assert is_current(engine)
    engine.dispose()


def every_param() -> list[Any]:
    params = []

    def walk(cmd: Any) -> None:
        params.extend(p for p in cmd.params if getattr(p, "type_descriptor", None))
        for sub in getattr(cmd, "commands", {}).values():
            walk(sub)

    root = typer.main.get_command(app)
    params.extend(root.params)
    for name in COMMANDS:
        walk(load_command(name))
    return params


SAMPLES: tuple[Any, ...] = (
    "0",
    "1",
    "42",
    "007",
    "-3",
    "1.5",
    "x",
    "",
    " 7",
    "²",
    "١٢",
    "a b",
    7,
    0,
    True,
    ("a", "b"),
    ["1", "2"],
    (),
    None,
)


def test_plain_values_are_what_typer_makes_of_them() -> None:
    from typer._click.exceptions import BadParameter
    from typer._coercion import build_runtime_param

    checked = 0
    for param in every_param():
        typers = build_runtime_param(param.type_descriptor)
        ctx = typer.Context(typer.main.get_command(app))
        for value in SAMPLES:
            many = param.multiple or param.nargs == -1
            try:
                expected: Any = typers.coerce(value, param=param, ctx=ctx)
            except BadParameter as exc:
                expected = ("error", exc.format_message())
            try:
                got: Any = PlainValues().coerce(value, param=param, ctx=ctx)
            except BadParameter as exc:
                got = ("error", exc.format_message())
            assert got == expected, (param.name, value)
            assert type(got) is type(expected), (param.name, value)
            if value is not None and not (many and isinstance(value, str)):
                checked += plain_value(param.type_descriptor, value) is not NOT_PLAIN
    assert checked > 100  # the plain path did answer for most


def test_the_lazy_console_is_a_rich_console(capsys: pytest.CaptureFixture[str]) -> None:
    console.print("[bold]plain[/] text")
    with console:  # Rich's Live uses it as a context manager
        console.print("inside")
    assert capsys.readouterr().out == "plain text\ninside\n"


if __name__ == "__main__":
    SURFACE.write_text(json.dumps(surface(), indent=1, ensure_ascii=False) + "\n")

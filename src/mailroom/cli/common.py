"""What every CLI command shares: the opened app, output consoles, small helpers.

Start-up matters here (every command imports this module): Rich and the app (SQLAlchemy,
the models, the secrets) are imported on first use, not at import. `console` and
`err_console` are stand-ins that build their Rich `Console` the first time something is
printed, so `mailroom --help` and `--json` output never import Rich.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from mailroom.errors import BadInput

if TYPE_CHECKING:
    from rich.console import Console

    from mailroom.app import App


class _LazyConsole:
    """A Rich Console made on first attribute access; forwards everything to it."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def real(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real(), name)

    # Dunder methods skip __getattr__; Rich's Live uses the console as a context manager.
    def __enter__(self) -> Console:
        return self.real().__enter__()

    def __exit__(self, *exc: object) -> None:
        self.real().__exit__(*exc)


# Typed as Console: callers use them as one (attribute access goes to the real Console).
console = cast("Console", _LazyConsole(highlight=False, soft_wrap=True))
err_console = cast("Console", _LazyConsole(stderr=True, highlight=False, soft_wrap=True))


@dataclass
class CliState:
    """The global options and the app opened lazily from them (closed by main)."""

    data_dir: str | None = None
    _app: App | None = None

    def app(self) -> App:
        if self._app is None:
            from mailroom.app import open_app
            from mailroom.config import load_settings

            self._app = open_app(load_settings(self.data_dir))
        return self._app

    def close(self) -> None:
        if self._app is not None:
            self._app.close()
            self._app = None


STATE = CliState()


def get_app() -> App:
    return STATE.app()


def print_json(value: Any) -> None:
    import json

    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def print_rows(
    rows: list[dict[str, Any]], *, as_json: bool, line: Callable[[dict[str, Any]], str]
) -> None:
    """A list command's output: the rows as JSON, or one console line per row."""
    if as_json:
        print_json(rows)
        return
    for row in rows:
        console.print(line(row))


def read_secret_stdin(what: str) -> str:
    """A password from standard input (one line), or a hidden prompt on a terminal."""
    if sys.stdin.isatty():
        import getpass

        value = getpass.getpass(f"{what}: ")
    else:
        value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        raise BadInput(
            f"No {what.lower()} on standard input.", hint="Pipe it in: echo … | mailroom …"
        )
    return value

"""What every CLI command shares: the opened app, output consoles, small helpers."""

from __future__ import annotations

import getpass
import json
import sys
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from mailroom.app import App, open_app
from mailroom.config import load_settings
from mailroom.errors import BadInput

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


@dataclass
class CliState:
    """The global options and the app opened lazily from them (closed by main)."""

    data_dir: str | None = None
    _app: App | None = None

    def app(self) -> App:
        if self._app is None:
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
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def read_secret_stdin(what: str) -> str:
    """A password from standard input (one line), or a hidden prompt on a terminal."""
    if sys.stdin.isatty():
        value = getpass.getpass(f"{what}: ")
    else:
        value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        raise BadInput(
            f"No {what.lower()} on standard input.", hint="Pipe it in: echo … | mailroom …"
        )
    return value

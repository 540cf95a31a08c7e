"""Settings: where the data dir is, which database to use, where the secret key lives.

Resolution order, highest first: the `--data-dir` option, `$MAILROOM_DATA_DIR`, then
`./mailroom-data`. The database is SQLite (WAL) at `DATA_DIR/mailroom.sqlite3` unless
`$MAILROOM_DATABASE_URL` names another (PostgreSQL: `postgresql+psycopg://…`). The
credential key is `$MAILROOM_SECRET_KEY` if set, else the file `DATA_DIR/secret.key`.
`$MAILROOM_PARSE_WORKER_MIN` is the number of messages from which one folder's fetch is
parsed in a worker process (sync/prepare.py; default 1000, 0 always, `off` never).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mailroom.errors import ConfigError

DEFAULT_DATA_DIR = "mailroom-data"
DEFAULT_PARSE_WORKER_MIN = 1000


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a Mailroom process needs to find its state."""

    data_dir: Path
    database_url: str
    secret_key_b64: str | None = None
    parse_worker_min: int | None = DEFAULT_PARSE_WORKER_MIN  # None: never

    @property
    def key_path(self) -> Path:
        """The secret key file (used when MAILROOM_SECRET_KEY is not set)."""
        return self.data_dir / "secret.key"

    @property
    def blob_dir(self) -> Path:
        """Where raw messages and attachments are stored, by content hash."""
        return self.data_dir / "blobs"

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is the embedded SQLite one."""
        return self.database_url.startswith("sqlite")


def load_settings(data_dir: str | os.PathLike[str] | None = None) -> Settings:
    """Build the settings from the option, then the environment, then the defaults."""
    chosen = data_dir or os.environ.get("MAILROOM_DATA_DIR") or DEFAULT_DATA_DIR
    path = Path(chosen).expanduser().resolve()
    url = os.environ.get("MAILROOM_DATABASE_URL") or f"sqlite:///{path / 'mailroom.sqlite3'}"
    return Settings(
        data_dir=path,
        database_url=url,
        secret_key_b64=os.environ.get("MAILROOM_SECRET_KEY") or None,
        parse_worker_min=_worker_min(os.environ.get("MAILROOM_PARSE_WORKER_MIN")),
    )


def _worker_min(value: str | None) -> int | None:
    if value is None or not value.strip():
        return DEFAULT_PARSE_WORKER_MIN
    if value.strip().lower() in ("off", "never", "no"):
        return None
    try:
        return max(0, int(value))
    except ValueError:
        raise ConfigError(
            f"MAILROOM_PARSE_WORKER_MIN must be a number of messages or 'off', not {value!r}",
            hint="Unset it to use the default (1000).",
        ) from None

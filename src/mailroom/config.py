"""Settings: where the data dir is, which database to use, where the secret key lives.

Resolution order, highest first: the `--data-dir` option, `$MAILROOM_DATA_DIR`, then
`./mailroom-data`. The database is SQLite (WAL) at `DATA_DIR/mailroom.sqlite3` unless
`$MAILROOM_DATABASE_URL` names another (PostgreSQL: `postgresql+psycopg://…`). The
credential key is `$MAILROOM_SECRET_KEY` if set, else the file `DATA_DIR/secret.key`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATA_DIR = "mailroom-data"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a Mailroom process needs to find its state."""

    data_dir: Path
    database_url: str
    secret_key_b64: str | None = None

    @property
    def key_path(self) -> Path:
        return self.data_dir / "secret.key"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def is_sqlite(self) -> bool:
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
    )

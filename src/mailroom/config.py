"""Settings: where the data dir is, which database to use, where the secret key lives.

Resolution order, highest first: the `--data-dir` option, `$MAILROOM_DATA_DIR`, then
`./mailroom-data`. The database is SQLite (WAL) at `DATA_DIR/mailroom.sqlite3` unless
`$MAILROOM_DATABASE_URL` names another (PostgreSQL: `postgresql+psycopg://…`). The
credential key is `$MAILROOM_SECRET_KEY` if set, else the file `DATA_DIR/secret.key`.
`$MAILROOM_PARSE_WORKER_MIN` is the number of messages from which one folder's fetch is
parsed in a worker process (sync/prepare.py; default 1000, 0 always, `off` never).
`$MAILROOM_ALLOW_PRIVATE_HOSTS=1` lets dashboard and API users connect mailboxes on
loopback, private, link-local and other non-public addresses (services.host_policy;
off by default: the CLI, run by the operator, may always use any host).
Provider discovery (services/discovery.py) asks `$MAILROOM_DNS_SERVER` (`address[:port]`)
instead of the system's name servers when it is set, and, for tests only,
`$MAILROOM_AUTOCONFIG_HTTP_PORT` makes it fetch autoconfig documents over plain HTTP on
that port instead of HTTPS on 443.

Everything Mailroom writes under the data dir is private to the user running it, whatever
the process's umask (issue 11): directories 0700, files 0600. The umask is process-wide and
is not touched; each directory and file is made with its mode (`make_private_dir`,
`open_private`), and SQLite's files, which SQLite makes itself, are `tighten`ed after.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from mailroom.errors import ConfigError

DEFAULT_DATA_DIR = "mailroom-data"
DEFAULT_PARSE_WORKER_MIN = 1000
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
ALLOW_PRIVATE_HOSTS_ENV = "MAILROOM_ALLOW_PRIVATE_HOSTS"
DNS_SERVER_ENV = "MAILROOM_DNS_SERVER"
AUTOCONFIG_HTTP_PORT_ENV = "MAILROOM_AUTOCONFIG_HTTP_PORT"


def make_private_dir(path: str | os.PathLike[str]) -> None:
    """Make `path` and each missing parent with mode 0700 (an existing one is left as is).

    `os.makedirs(mode=…)` applies the mode to the last directory only; here each one made is
    0700 (the umask can only take bits away), then set to exactly 0700.
    """
    target = os.fspath(path)
    if os.path.isdir(target):
        return
    parent = os.path.dirname(os.path.normpath(target))
    if parent and parent != target and not os.path.isdir(parent):
        make_private_dir(parent)
    try:
        os.mkdir(target, PRIVATE_DIR)
    except FileExistsError:
        if not os.path.isdir(target):
            raise
        return
    os.chmod(target, PRIVATE_DIR)


def open_private(path: str | os.PathLike[str], *, exclusive: bool = False) -> BinaryIO:
    """Open `path` for writing (truncated), made with mode 0600 and kept at 0600.

    `exclusive`: `FileExistsError` if it exists already.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | (os.O_EXCL if exclusive else 0)
    fd = os.open(path, flags, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "wb")


def write_private(path: str | os.PathLike[str], data: bytes | Sequence[bytes]) -> None:
    """Write `data` (or its parts end to end) as the file `path` (made or truncated), mode
    0600 as `open_private`; with bare descriptors and gathered writes, no buffered file
    object and no joined copy (the fetch workers' staged packs, mail.packs)."""
    parts = [data] if isinstance(data, bytes) else data
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
        for start in range(0, len(parts), _GATHER):
            chunk = parts[start : start + _GATHER]
            left = os.writev(fd, chunk)
            for part in chunk:  # a short write: the rest part by part
                if left >= len(part):
                    left -= len(part)
                    continue
                view = memoryview(part)[left:]
                left = 0
                while view:
                    view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


_GATHER = 512  # parts per writev(2), under every system's IOV_MAX (Linux: 1024)


def tighten(path: str | os.PathLike[str]) -> None:
    """Set an existing file to 0600 (a directory to 0700); nothing if it does not exist."""
    try:
        mode = PRIVATE_DIR if os.path.isdir(path) else PRIVATE_FILE
        if os.stat(path).st_mode & 0o777 != mode:
            os.chmod(path, mode)
    except FileNotFoundError:
        pass


DEFAULT_PUBLIC_URL = "http://127.0.0.1:8025"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a Mailroom process needs to find its state."""

    data_dir: Path
    database_url: str
    secret_key_b64: str | None = None
    parse_worker_min: int | None = DEFAULT_PARSE_WORKER_MIN  # None: never
    allow_private_hosts: bool = False  # web/API mailboxes on non-public addresses
    public_url: str = DEFAULT_PUBLIC_URL  # where people reach the dashboard (links in mail)
    dns_server: str | None = None  # discovery's name server, address[:port]
    autoconfig_http_port: int | None = None  # tests only: autoconfig over plain HTTP

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
        allow_private_hosts=private_hosts_allowed(),
        public_url=_public_url(os.environ.get("MAILROOM_PUBLIC_URL")),
        dns_server=os.environ.get(DNS_SERVER_ENV, "").strip() or None,
        autoconfig_http_port=_port(os.environ.get(AUTOCONFIG_HTTP_PORT_ENV)),
    )


def _public_url(value: str | None) -> str:
    """`$MAILROOM_PUBLIC_URL` without its trailing slash: http(s)://host[:port][/path]."""
    if value is None or not value.strip():
        return DEFAULT_PUBLIC_URL
    url = value.strip().rstrip("/")
    scheme, _, rest = url.partition("://")
    if scheme not in ("http", "https") or not rest or any(c in rest for c in "?#@ "):
        raise ConfigError(
            f"MAILROOM_PUBLIC_URL must be an http(s) address like https://crm.example.com, "
            f"not {value!r}",
            hint="Set it to the address people open the dashboard at, or unset it.",
        )
    return url


def _port(value: str | None) -> int | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ConfigError(
            f"{AUTOCONFIG_HTTP_PORT_ENV} must be a port number, not {value!r}",
            hint="It is for tests only: unset it.",
        )
    return int(text)


def private_hosts_allowed() -> bool:
    """Whether `$MAILROOM_ALLOW_PRIVATE_HOSTS` is set to 1 (or true/yes)."""
    value = os.environ.get(ALLOW_PRIVATE_HOSTS_ENV, "").strip().lower()
    return value in ("1", "true", "yes")


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

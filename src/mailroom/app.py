"""The application context every interface (CLI, web, workers) opens first.

It checks the interpreter, builds the engine and the session factory, upgrades the schema,
and gives lazy access to the credential key (only commands that touch credentials need it).

Every command opens it, so it imports little: Alembic only when the schema is behind
(db/migrate.py), `cryptography` only when the credential key is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from mailroom.config import Settings, make_private_dir, tighten
from mailroom.db.engine import make_engine, make_session_factory
from mailroom.db.migrate import upgrade
from mailroom.errors import ConfigError
from mailroom.runtime import require_safe_email_package

if TYPE_CHECKING:
    from mailroom.mail.blobs import BlobStore
    from mailroom.security.secrets import SecretBox


@dataclass
class App:
    """Settings plus the shared objects built from them."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]

    @cached_property
    def blobs(self) -> BlobStore:
        from mailroom.mail.blobs import BlobStore

        return BlobStore(self.settings.blob_dir)

    @cached_property
    def secrets(self) -> SecretBox:
        from mailroom.security.secrets import SecretBox, load_key

        key = load_key(env_value=self.settings.secret_key_b64, path=self.settings.key_path)
        return SecretBox(key)

    def close(self) -> None:
        self.engine.dispose()


def open_app(settings: Settings, *, migrate: bool = True) -> App:
    """Check the runtime, connect to the database and bring its schema up to date."""
    require_safe_email_package()
    if settings.is_sqlite:
        try:
            make_private_dir(settings.data_dir)
            tighten(settings.data_dir)
        except OSError as exc:
            raise ConfigError(
                f"Cannot create the data dir {settings.data_dir}: {exc.strerror}.",
                hint="Choose a writable directory with --data-dir or MAILROOM_DATA_DIR.",
            ) from exc
    engine = make_engine(settings.database_url)
    if migrate:
        try:
            upgrade(engine)
        except Exception as exc:
            engine.dispose()
            raise ConfigError(
                f"Cannot open the database: {exc.__class__.__name__}: {exc}".splitlines()[0],
                hint="Check MAILROOM_DATABASE_URL (or the data dir's permissions).",
            ) from exc
    return App(settings=settings, engine=engine, sessions=make_session_factory(engine))

"""`mailroom serve`: the web app plus the poll scheduler, in one process.

Until the dashboard and its sign-in exist, the web app exposes only what needs no
authentication and reveals no tenant's data: a status page and `/healthz` with counts.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from collections import Counter
from collections.abc import Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from mailroom import __version__
from mailroom.app import App
from mailroom.db.models import Mailbox
from mailroom.security.secrets import create_key_file
from mailroom.sync.scheduler import PollScheduler

log = logging.getLogger(__name__)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def create_web_app(app: App) -> FastAPI:
    web = FastAPI(title="Mailroom", version=__version__, docs_url=None, redoc_url=None)

    def health() -> dict[str, Any]:
        with app.sessions() as session:
            statuses = Counter(session.scalars(select(Mailbox.status)))
        return {"status": "ok", "version": __version__, "mailboxes": dict(statuses)}

    @web.get("/healthz")
    def healthz() -> dict[str, Any]:
        return health()

    @web.get("/", response_class=HTMLResponse)
    def index() -> str:
        counts = health()["mailboxes"]
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no mailboxes yet"
        return (
            "<!doctype html><html lang=en><meta charset=utf-8><title>Mailroom</title>"
            "<body style='font-family:system-ui;margin:3rem'><h1>Mailroom is running</h1>"
            f"<p>Mailboxes: {summary}.</p><p>Use the <code>mailroom</code> command to add "
            "companies, users, records and mailboxes.</p></body></html>"
        )

    return web


class _Server(uvicorn.Server):
    """uvicorn's server without its re-raise of SIGTERM/SIGINT after shutdown.

    uvicorn re-raises a captured signal once it has stopped, which kills the process
    before `run_server` can stop the scheduler; here a signal only asks for shutdown,
    and the process then exits 0 after every component has stopped cleanly.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def run_server(app: App, *, host: str, port: int, interval: int) -> None:
    if not app.settings.secret_key_b64 and create_key_file(app.settings.key_path):
        log.warning("created the secret key %s (mode 0600): back it up", app.settings.key_path)
    scheduler = PollScheduler(app, interval=interval)
    scheduler.start()
    server = _Server(uvicorn.Config(create_web_app(app), host=host, port=port, log_level="info"))
    try:
        server.run()
    finally:
        scheduler.stop()

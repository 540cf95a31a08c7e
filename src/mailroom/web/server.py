"""`mailroom serve`: the web dashboard and API, the poll scheduler and the retention sweep.

On PostgreSQL (`run_web_only`): the web, the API and the drop-address receiver only; every
background job runs in `mailroom worker` processes (jobs/), `--workers N` of them started
here as children.

On SQLite, one process (the embedded default): uvicorn serves `create_web_app(app)` (web/app.py)
while daemon threads poll mailboxes (`PollScheduler`), delete unlinked mail past its
retention (`RetentionSweeper`), thread mail stored before conversations existed
(`ConversationBackfill`, until none is left), prune the record index's change log
(`IndexLogPruner`), remind the people of a mailbox whose OAuth
grant died once a day (`RevokedNotices`) and queue the daily reminder of due tasks
(`TaskReminders`). Each background service is started before uvicorn and stopped after it,
in reverse order. `proxy_headers` lets a TLS proxy on 127.0.0.1 mark
requests https, which makes the session cookie `Secure`.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Iterator

import uvicorn

from mailroom.app import App
from mailroom.crm.retention import RetentionSweeper
from mailroom.matching.conversations import ConversationBackfill
from mailroom.matching.index_log import IndexLogPruner
from mailroom.security.secrets import create_key_file
from mailroom.services.mail_services import start_mail_services
from mailroom.services.oauth_notices import RevokedNotices
from mailroom.services.setup import FirstRun, setup_open, setup_url
from mailroom.services.task_reminders import TaskReminders
from mailroom.services.workers import start_workers
from mailroom.sync.scheduler import PollScheduler
from mailroom.web.app import create_web_app

__all__ = ["create_web_app", "run_server"]

log = logging.getLogger(__name__)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


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


def _first_run(app: App, host: str, port: int) -> FirstRun | None:
    """While no user exists: a one-time setup token, its address printed (never logged to
    a file: it is printed on the terminal that started `serve`)."""
    with app.sessions() as session:
        if not setup_open(session):
            return None
    first_run = FirstRun()
    url = setup_url(host, port, first_run.issue())
    print(
        f"No user yet. Open {url} to create the first company and admin (the address works once).",
        flush=True,
    )
    return first_run


def run_server(
    app: App, *, host: str, port: int, interval: int, smtp_port: int = 2525, workers: int = 0
) -> None:
    """`mailroom serve`: on SQLite the web with every background service in this process;
    on PostgreSQL (or with `workers`) `run_web_only`."""
    if not app.settings.secret_key_b64 and create_key_file(app.settings.key_path):
        log.warning("created the secret key %s (mode 0600): back it up", app.settings.key_path)
    if not app.settings.is_sqlite or workers:  # --workers on SQLite: a clear ConfigError
        run_web_only(app, host=host, port=port, smtp_port=smtp_port, workers=workers)
        return
    with contextlib.ExitStack() as running:  # stopped after uvicorn, in reverse order
        for service in (
            PollScheduler(app, interval=interval),
            RetentionSweeper(app),
            ConversationBackfill(app),
            IndexLogPruner(app),
            RevokedNotices(app),
            TaskReminders(app),
        ):
            service.start()
            running.callback(service.stop)
        running.callback(start_mail_services(app, host=host, smtp_port=smtp_port).stop)
        _serve(app, host=host, port=port)


def run_web_only(app: App, *, host: str, port: int, smtp_port: int, workers: int) -> None:
    """PostgreSQL: the web, the API and the drop address; never a sync. `workers` worker
    processes run beside it (stopped with SIGTERM, so they hand back, when serve stops)."""
    with contextlib.ExitStack() as running:
        running.callback(start_workers(app=app, count=workers).stop)
        running.callback(
            start_mail_services(app, host=host, smtp_port=smtp_port, outbox=False).stop
        )
        _serve(app, host=host, port=port)


def _serve(app: App, *, host: str, port: int) -> None:
    """uvicorn serving the dashboard and the API until a stop signal."""
    config = uvicorn.Config(
        create_web_app(app, first_run=_first_run(app, host, port)),
        host=host,
        port=port,
        log_level="info",
        proxy_headers=True,
    )
    _Server(config).run()

"""Never sent twice: `mailroom send` killed (SIGKILL) between queue and send, and between
the server's acceptance and the commit, then the outbox is processed again.

The SMTP server does the killing, so the kill lands exactly where the test says: at MAIL
(after the queue commit, before any message went out) or at the end of DATA (the server
has the message, the client never hears back).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from mailroom.app import App
from mailroom.db.outbox_models import OutboxAttempt, OutboxEntry
from mailroom.outbox.delivery import LEASE, process_due
from mailroom_testing.dovecot import DovecotServer
from tests.conftest_smtp import OutboxEnv, Received, SmtpTestServer, make_outbox_env

MAILROOM = [sys.executable, "-c", "from mailroom.cli import main; main()"]


class Killer:
    """Kills the `mailroom send` child from inside the SMTP server, once it is known."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self.known = threading.Event()

    def __call__(self, *_: object) -> None:
        assert self.known.wait(30), "the child's pid was never set"
        assert self.pid is not None
        os.kill(self.pid, signal.SIGKILL)


def run_send_killed(env: OutboxEnv, killer: Killer) -> subprocess.CompletedProcess[bytes]:
    settings = env.app.settings
    child_env = {
        **os.environ,
        "MAILROOM_SECRET_KEY": settings.secret_key_b64 or "",
        "SSL_CERT_FILE": str(env.ca_bundle),
    }
    args = [
        *MAILROOM,
        "--data-dir",
        str(settings.data_dir),
        "send",
        "--mailbox",
        str(env.mailbox_id),
        "--to",
        "jo@client.example",
        "--subject",
        "Crash test",
        "--body",
        "Exactly once, please.",
    ]
    proc = subprocess.Popen(args, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    killer.pid = proc.pid
    killer.known.set()
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def entry_and_attempts(app: App) -> tuple[OutboxEntry, list[OutboxAttempt]]:
    with app.sessions() as session:
        entry = session.scalars(select(OutboxEntry)).one()
        attempts = list(session.scalars(select(OutboxAttempt).order_by(OutboxAttempt.number)))
        return entry, attempts


def after_lease() -> datetime:
    return datetime.now(UTC) + LEASE + LEASE


@pytest.fixture
def env_for(
    sqlite_app: App,
    dovecot: DovecotServer,
    imap_user: tuple[str, str],
    smtp: SmtpTestServer,
    monkeypatch: pytest.MonkeyPatch,
):  # type: ignore[no-untyped-def]
    return lambda preset=None: make_outbox_env(
        sqlite_app, dovecot, imap_user, smtp, monkeypatch, preset=preset
    )


def test_killed_between_queue_and_send_it_is_sent_exactly_once(env_for) -> None:  # type: ignore[no-untyped-def]
    env: OutboxEnv = env_for()
    killer = Killer()
    env.smtp.handler.on_mail = killer
    done = run_send_killed(env, killer)
    assert done.returncode == -signal.SIGKILL
    assert env.smtp.messages == []
    entry, attempts = entry_and_attempts(env.app)
    assert entry.status == "sending" and [a.stage for a in attempts] == ["connecting"]
    env.smtp.handler.on_mail = None
    assert process_due(env.app) == []  # the dead process's lease still holds
    (result,) = process_due(env.app, now=after_lease())
    assert result.status == "sent"
    assert len(env.smtp.messages) == 1
    entry, attempts = entry_and_attempts(env.app)
    assert [a.outcome for a in attempts] == ["abandoned", "accepted"]
    assert entry.sent_folder == "Sent" and entry.stored_message_id is not None
    assert process_due(env.app, now=after_lease()) == []
    assert len(env.smtp.messages) == 1


def test_killed_after_the_server_accepted_it_is_found_in_sent_not_resent(env_for) -> None:  # type: ignore[no-untyped-def]
    env: OutboxEnv = env_for("gmail")  # the provider files the Sent copy itself

    killer = Killer()

    def provider_files_then_client_dies(got: Received) -> None:
        env.dovecot.append(env.imap_user, "Sent", got.data, flags=["\\Seen"])
        killer()

    env.smtp.handler.on_data = provider_files_then_client_dies
    done = run_send_killed(env, killer)
    assert done.returncode == -signal.SIGKILL
    assert len(env.smtp.messages) == 1
    entry, attempts = entry_and_attempts(env.app)
    assert entry.status == "sending" and [a.stage for a in attempts] == ["data"]
    env.smtp.handler.on_data = None
    (result,) = process_due(env.app, now=after_lease())
    assert result.status == "sent"
    assert len(env.smtp.messages) == 1, "the message must not be sent a second time"
    entry, attempts = entry_and_attempts(env.app)
    assert [a.outcome for a in attempts] == ["unknown", "found-in-sent"]
    assert entry.sent_folder == "Sent" and entry.stored_message_id is not None


def test_killed_after_the_server_accepted_without_a_sent_copy_it_is_held(env_for) -> None:  # type: ignore[no-untyped-def]
    env: OutboxEnv = env_for()
    killer = Killer()
    env.smtp.handler.on_data = killer
    assert run_send_killed(env, killer).returncode == -signal.SIGKILL
    env.smtp.handler.on_data = None
    (result,) = process_due(env.app, now=after_lease())
    assert result.status == "held"
    assert process_due(env.app, now=after_lease()) == []
    assert len(env.smtp.messages) == 1
    entry, _ = entry_and_attempts(env.app)
    assert entry.error_kind == "unknown-outcome" and "outbox retry" in (entry.hint or "")

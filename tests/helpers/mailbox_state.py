"""What a mailbox test compares before and after a refused change (every stored setting),
and the small steps the mailbox interface tests share: the CLI, waiting for background syncs."""

from __future__ import annotations

import io
import sys
import time

import pytest
from sqlalchemy import select

from mailroom.app import App
from mailroom.cli import main
from mailroom.db.models import Mailbox
from mailroom.db.outbox_models import MailboxSmtp
from mailroom.services import background


def stored(app: App) -> list[tuple[object, ...]]:
    """Each mailbox's settings and encrypted secret, and its SMTP row's, by id."""
    with app.sessions() as session:
        boxes = [
            (
                m.id,
                m.host,
                m.port,
                m.security,
                m.username,
                bytes(m.secret),
                m.allow_self_signed,
                m.enabled,
                m.status,
            )
            for m in session.scalars(select(Mailbox).order_by(Mailbox.id))
        ]
        smtp = [
            (
                "smtp",
                r.mailbox_id,
                r.host,
                r.port,
                r.security,
                r.username,
                bytes(r.secret) if r.secret is not None else None,
            )
            for r in session.scalars(select(MailboxSmtp).order_by(MailboxSmtp.mailbox_id))
        ]
    return boxes + smtp


def run_cli(app: App, monkeypatch: pytest.MonkeyPatch, *args: str, stdin: str = "") -> int:
    """`mailroom --data-dir DIR ARGS…` in this process, with `stdin` on standard input."""
    monkeypatch.setenv("MAILROOM_SECRET_KEY", app.settings.secret_key_b64 or "")
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return main(["--data-dir", str(app.settings.data_dir), *args])


ORIGIN = {"Origin": "http://testserver"}


def wait_for_syncs(*mailbox_ids: int) -> None:
    """Wait (up to a minute) until the background syncs of these mailboxes have finished."""
    deadline = time.monotonic() + 60
    while any(background.running(m) for m in mailbox_ids) and time.monotonic() < deadline:
        time.sleep(0.05)

"""Provider limits: refused before sending, with the limit named; the daily count shown."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from mailroom.app import App
from mailroom.cli import main
from mailroom.db.engine import transaction
from mailroom.db.models import Mailbox
from mailroom.db.outbox_models import OutboxEntry
from mailroom.outbox.limits import LimitExceeded
from mailroom.outbox.service import SendRequest, queue_message
from mailroom_testing.dovecot import DovecotServer
from tests.conftest_smtp import SmtpTestServer, make_outbox_env


@pytest.fixture
def app_for(
    sqlite_app: App,
    dovecot: DovecotServer,
    imap_user: tuple[str, str],
    smtp: SmtpTestServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[str], int]:
    def make(preset: str) -> int:
        env = make_outbox_env(sqlite_app, dovecot, imap_user, smtp, monkeypatch, preset=preset)
        return env.mailbox_id

    return make


def queue(app: App, mailbox_id: int, to: list[str], text: str = "Hi") -> None:
    with transaction(app.sessions) as session:
        queue_message(
            session, request=SendRequest(mailbox_id=mailbox_id, to=to, subject="Hi", text=text)
        )


def test_too_many_recipients_is_refused_naming_the_limit(
    sqlite_app: App, app_for: Callable[[str], int]
) -> None:
    box = app_for("gmail")
    with pytest.raises(LimitExceeded, match="recipients per message") as caught:
        queue(sqlite_app, box, [f"p{n}@client.example" for n in range(101)])
    assert caught.value.limit == "recipients_per_message" and caught.value.exit_code == 1


def test_a_message_too_big_for_the_provider_is_refused(
    sqlite_app: App, app_for: Callable[[str], int]
) -> None:
    box = app_for("icloud")
    with pytest.raises(LimitExceeded, match="message size"):
        queue(sqlite_app, box, ["jo@client.example"], text="x" * (21 * 1024 * 1024))


def test_the_daily_limit_is_enforced_and_the_count_is_visible(
    sqlite_app: App,
    app_for: Callable[[str], int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    box = app_for("outlook")  # 300 messages per day
    now = datetime.now(UTC)
    with transaction(sqlite_app.sessions) as session:
        mailbox = session.get(Mailbox, box)
        assert mailbox is not None
        for n in range(300):
            session.add(
                OutboxEntry(
                    company_id=mailbox.company_id,
                    mailbox_id=box,
                    message_id=f"old-{n}@acme.example",
                    envelope_from=mailbox.address,
                    recipients=["jo@client.example"],
                    recipient_count=1,
                    status="sent",
                    created_at=now - timedelta(hours=23) if n else now - timedelta(hours=25),
                )
            )
    queue(sqlite_app, box, ["jo@client.example"])  # one of the 300 is older than 24 h
    with pytest.raises(LimitExceeded, match="300 messages per day") as caught:
        queue(sqlite_app, box, ["jo@client.example"])
    assert caught.value.limit == "messages_per_day"
    with sqlite_app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(OutboxEntry)) == 301
    code = main(["--data-dir", str(sqlite_app.settings.data_dir), "outbox", "list", "--json"])
    assert code == 0
    usage = json.loads(capsys.readouterr().out)["mailboxes"]
    assert usage == [
        {
            "mailbox_id": box,
            "address": "ann@acme.example",
            "preset": "outlook",
            "messages_24h": 300,
            "recipients_24h": 300,
            "messages_per_day": 300,
            "recipients_per_day": None,
        }
    ]

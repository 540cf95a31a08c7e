"""`mailroom records backfill RECORD`: older mail found on the server by address, linked."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from mailroom.app import App
from mailroom.crm.records import EmailField, add_record
from mailroom.crm.timeline import timeline_entries
from mailroom.db.engine import transaction
from mailroom.db.models import Company, Message, Record
from mailroom.sync.engine import sync_mailbox
from mailroom_testing.builders import build_message
from mailroom_testing.dovecot import DovecotServer
from tests.helpers.mailbox_state import run_cli
from tests.helpers.sync_support import connect_mailbox, message_count


def test_records_backfill_fetches_older_mail_of_the_record_from_the_server(
    sqlite_app: App,
    dovecot: DovecotServer,
    imap_user: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    login = imap_user[0]
    old = datetime.now(UTC) - timedelta(days=400)
    for n, (sender, to) in enumerate(
        [
            ("sue@client.example", f"{login}@acme.example"),
            (f"{login}@acme.example", "sue@client.example"),
            ("other@else.example", f"{login}@acme.example"),
        ]
    ):
        data = build_message(sender=sender, to=to, subject=f"Old {n}", minutes=n)
        dovecot.append(login, "INBOX", data, internaldate=old)
    dovecot.append(login, "INBOX", build_message(sender="new@client.example", subject="Recent"))
    since = (datetime.now(UTC) - timedelta(days=30)).date()
    box = connect_mailbox(sqlite_app, dovecot, imap_user, since=since, folders=("INBOX",))
    assert sync_mailbox(sqlite_app, box).messages == 1
    with transaction(sqlite_app.sessions) as session:
        company = session.scalars(select(Company)).one()
        record = add_record(
            session,
            company=company,
            record_type="contact",
            name="Sue",
            emails=[EmailField("main", "Sue@Client.example")],
        )
        ref = record.ref

    capsys.readouterr()
    assert run_cli(sqlite_app, monkeypatch, "records", "backfill", ref, "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["found"], report["fetched"], report["messages"]) == (2, 2, 2)
    with sqlite_app.sessions() as session:
        record_row = session.scalars(select(Record).where(Record.type == "contact")).one()
        subjects = [e.subject for e in timeline_entries(session, records=[record_row])]
        assert set(subjects) == {"Old 0", "Old 1"}
        assert "Old 2" not in set(session.scalars(select(Message.subject)))

    assert run_cli(sqlite_app, monkeypatch, "records", "backfill", ref, "--json") == 0
    assert json.loads(capsys.readouterr().out)["fetched"] == 0, "nothing twice"
    assert message_count(sqlite_app) == 3

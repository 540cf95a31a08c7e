"""The sync engine over an in-memory source: cursors, dedup, direction, links, timeline."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from mailroom.app import App
from mailroom.crm.records import EmailField, add_record
from mailroom.crm.timeline import timeline_entries
from mailroom.db.engine import transaction
from mailroom.db.models import (
    FolderState,
    Mailbox,
    Message,
    MessageCopy,
    MessageLink,
    Record,
)
from mailroom.sync.engine import sync_mailbox
from mailroom_testing.builders import build_message
from mailroom_testing.memory_source import MemorySource
from tests.helpers.sync_support import setup_company


def opener_for(sources: dict[int, MemorySource]) -> Callable[[Mailbox, App], MemorySource]:
    return lambda mailbox, _app: sources[mailbox.id]


def count(app: App, model: type) -> int:
    with app.sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_first_sync_stores_links_and_resync_writes_nothing(any_app: App) -> None:
    (box,) = setup_company(any_app)
    source = MemorySource()
    for n in range(5):
        source.folders["INBOX"].append(
            build_message(sender="jo@client.example", to="user0@acme.example", minutes=n)
        )
    opener = opener_for({box: source})
    report = sync_mailbox(any_app, box, opener=opener, batch_size=2)
    assert (report.messages, report.copies, report.links, report.error) == (5, 5, 5, None)
    with any_app.sessions() as session:
        state = session.scalar(select(FolderState).where(FolderState.name == "INBOX"))
        assert state is not None and (state.last_uid, state.stage) == (5, "ready")
    before = source.fetched
    again = sync_mailbox(any_app, box, opener=opener)
    assert source.fetched == before, "an unchanged folder must not be fetched"
    assert all(f.skipped for f in again.folders)
    assert (count(any_app, Message), count(any_app, MessageCopy)) == (5, 5)


def test_new_mail_arrives_on_the_next_sync(any_app: App) -> None:
    (box,) = setup_company(any_app)
    source = MemorySource()
    source.folders["INBOX"].append(build_message(sender="jo@client.example"))
    opener = opener_for({box: source})
    sync_mailbox(any_app, box, opener=opener)
    source.folders["INBOX"].append(build_message(sender="jo@client.example", minutes=5))
    report = sync_mailbox(any_app, box, opener=opener)
    assert report.fetched == 1 and report.messages == 1


def test_one_message_in_inbox_and_sent_is_one_row_with_two_copies(any_app: App) -> None:
    (box,) = setup_company(any_app)
    source = MemorySource()
    data = build_message(sender="user0@acme.example", to="jo@client.example")
    source.folders["INBOX"].append(data)
    source.folders["Sent"].append(data)
    report = sync_mailbox(any_app, box, opener=opener_for({box: source}))
    assert (report.messages, report.copies, report.links) == (1, 2, 1)
    with any_app.sessions() as session:
        (message,) = session.scalars(select(Message))
        assert message.direction == "outbound"


def test_same_message_in_two_users_mailboxes_is_one_row(any_app: App) -> None:
    one, two = setup_company(any_app, mailbox_users=2)
    data = build_message(sender="jo@client.example", to="user0@acme.example, user1@acme.example")
    sources = {one: MemorySource(), two: MemorySource()}
    for source in sources.values():
        source.folders["INBOX"].append(data)
    sync_mailbox(any_app, one, opener=opener_for(sources))
    sync_mailbox(any_app, two, opener=opener_for(sources))
    assert (count(any_app, Message), count(any_app, MessageCopy), count(any_app, MessageLink)) == (
        1,
        2,
        1,
    )
    with any_app.sessions() as session:
        record = session.scalar(select(Record).where(Record.type == "contact"))
        assert record is not None
        (entry,) = timeline_entries(session, records=[record])
        assert entry.mailboxes == [one, two]


def test_internal_mail_is_stored_but_never_linked(any_app: App) -> None:
    (box,) = setup_company(any_app)
    source = MemorySource()
    source.folders["INBOX"].append(
        build_message(sender="boss@acme.example", to="user0@acme.example", cc="x@sub.acme.example")
    )
    report = sync_mailbox(any_app, box, opener=opener_for({box: source}))
    assert (report.messages, report.links) == (1, 0)
    with any_app.sessions() as session:
        assert session.scalar(select(Message.direction)) == "internal"


def test_a_record_added_later_picks_up_stored_mail(any_app: App) -> None:
    (box,) = setup_company(any_app)
    source = MemorySource()
    source.folders["INBOX"].append(build_message(sender="Sue <SUE@Client.example>"))
    sync_mailbox(any_app, box, opener=opener_for({box: source}))
    with transaction(any_app.sessions) as session:
        company_id = session.scalar(select(Mailbox.company_id))
        company = session.get(__import__("mailroom.db.models").db.models.Company, company_id)
        record = add_record(
            session,
            company=company,
            record_type="lead",
            name="Sue",
            emails=[EmailField("main", "sue@client.example")],
        )
        assert [e.reasons for e in timeline_entries(session, records=[record])] == [
            {record.ref: "address:main"}
        ]


def test_unparseable_mail_is_stored_raw_never_dropped(any_app: App) -> None:
    (box,) = setup_company(any_app)
    source = MemorySource()
    source.folders["INBOX"].append(b"\x00\xff garbage without headers \r\n\r\n\x80")
    report = sync_mailbox(any_app, box, opener=opener_for({box: source}))
    assert report.messages == 1
    with any_app.sessions() as session:
        message = session.scalars(select(Message)).one()
        assert message.raw_sha256
        assert any_app.blobs.has_raw(message.raw_sha256, message.raw_location)


def test_timeline_is_newest_first_with_both_directions(any_app: App) -> None:
    (box,) = setup_company(any_app)
    source = MemorySource()
    first = build_message(sender="jo@client.example", subject="Question", minutes=0)
    source.folders["INBOX"].append(first)
    source.folders["Sent"].append(
        build_message(
            sender="user0@acme.example", to="jo@client.example", subject="Re: Question", minutes=10
        )
    )
    source.folders["INBOX"].append(
        build_message(sender="jo@client.example", subject="Re: Re: Question", minutes=20)
    )
    sync_mailbox(any_app, box, opener=opener_for({box: source}))
    with any_app.sessions() as session:
        record = session.scalar(select(Record).where(Record.type == "contact"))
        entries = timeline_entries(session, records=[record])  # type: ignore[list-item]
    assert [e.subject for e in entries] == ["Re: Re: Question", "Re: Question", "Question"]
    assert [e.direction for e in entries] == ["inbound", "outbound", "inbound"]
    assert entries[0].date == "2026-01-05T09:50:00+00:00"


@pytest.mark.parametrize("folder", ["Archive"])
def test_only_inbox_and_sent_are_synced_by_default(any_app: App, folder: str) -> None:
    (box,) = setup_company(any_app)
    source = MemorySource()
    source.folders[folder].append(build_message(sender="jo@client.example"))
    report = sync_mailbox(any_app, box, opener=opener_for({box: source}))
    assert [f.name for f in report.folders] == ["INBOX", "Sent"]
    assert report.messages == 0

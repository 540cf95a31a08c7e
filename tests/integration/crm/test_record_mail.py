"""The mail an address brings (issue 13, item 1), on real Enron mail and both databases:
after a record gains an address, the links made equal an independent count of the stored
raw messages naming that address (stdlib `email`, every address header Mailroom reads);
removing the address takes exactly those links away; above the inline limit the same
links are made by the background thread."""

from __future__ import annotations

import time
from collections import Counter
from email import message_from_bytes
from email.policy import compat32
from email.utils import getaddresses
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailroom.app import App
from mailroom.connectors.base import RawMessage
from mailroom.crm.companies import add_company, add_user
from mailroom.crm.records import EmailField
from mailroom.db.engine import transaction
from mailroom.db.matching_models import MessageSkip
from mailroom.db.models import Message, MessageLink
from mailroom.ingest.batch import IngestTarget, ingest_batch
from mailroom.mailboxes.store import add_mailbox
from mailroom.matching.directory import load_directory
from mailroom.services import record_links
from mailroom.services.records import RecordEdit, create_record, edit_record, find_record

CUSTODIAN = "donoho-l"
HEADERS = ("from", "to", "cc", "bcc", "reply-to", "sender")


def raw_mail(corpus: Path) -> list[bytes]:
    files = sorted((corpus / "conversations" / "enron" / CUSTODIAN).rglob("*.eml"))
    assert len(files) > 500
    return [f.read_bytes() for f in files]


def addresses_of(data: bytes) -> set[str]:
    """Every address in the headers Mailroom matches on, as the stdlib reads them."""
    parsed = message_from_bytes(data, policy=compat32)
    values = [str(v) for h in HEADERS for v in (parsed.get_all(h) or [])]
    return {a.strip().lower() for _n, a in getaddresses(values) if "@" in a}


def store(app: App, raws: list[bytes]) -> int:
    with transaction(app.sessions) as session:
        company = add_company(session, name="Acme", domains=["acme.example"])
        user = add_user(session, company=company, email="ann@acme.example", admin=True)
        box = add_mailbox(
            session, app.secrets, user=user, host="imap.test", port=993, password="pw-123456"
        )
        company_id, box_id = company.id, box.id
    for start in range(0, len(raws), 200):
        with transaction(app.sessions) as session:
            target = IngestTarget(
                company_id=company_id,
                mailbox_id=box_id,
                directory=load_directory(session, company_id),
                blobs=app.blobs,
            )
            batch = [
                RawMessage(folder="INBOX", uidvalidity=1, uid=start + i + 1, data=data)
                for i, data in enumerate(raws[start : start + 200])
            ]
            ingest_batch(session, target, batch)
    return company_id


def independent_count(app: App, raws: list[bytes], address: str) -> int:
    """Stored, logged messages naming `address`, counted from the raw bytes: the stored
    message ids come from the database, the decision "names the address" from the stdlib."""
    naming = set()
    for data in raws:
        if address in addresses_of(data):
            found = message_from_bytes(data, policy=compat32)["Message-ID"]
            naming.add(str(found).strip().strip("<>"))
    with app.sessions() as session:
        logged = set(
            session.scalars(
                select(Message.message_id).where(Message.id.not_in(select(MessageSkip.message_id)))
            )
        )
    return len(naming & logged)


def links_of(app: App, record_id: int) -> int:
    with app.sessions() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(MessageLink)
                .where(MessageLink.record_id == record_id)
            )
            or 0
        )


def busiest_sender(raws: list[bytes]) -> str:
    senders = Counter(
        a for data in raws for a in addresses_of(data) if a.endswith("@enron.com") and ".." not in a
    )
    return senders.most_common(3)[-1][0]  # not the custodian's own (the most common)


def test_links_after_adding_an_address_equal_an_independent_count_and_go_when_it_goes(
    any_app: App, corpus: Path
) -> None:
    raws = raw_mail(corpus)
    company_id = store(any_app, raws)
    address = busiest_sender(raws)
    expected = independent_count(any_app, raws, address)
    assert expected >= 20, (address, expected)
    with transaction(any_app.sessions) as session:
        made = create_record(
            session, viewer=None, company_id=company_id, record_type="contact", name="Someone"
        )
        assert made.linked == 0
        record_id = made.record.id
    with transaction(any_app.sessions) as session:
        record = find_record(session, viewer=None, ref=f"contact:{record_id}")
        change = edit_record(
            session,
            viewer=None,
            record=record,
            edit=RecordEdit(add_emails=[EmailField("main", address)]),
        )
    assert change.linked == expected == links_of(any_app, record_id)
    with transaction(any_app.sessions) as session:
        record = find_record(session, viewer=None, ref=f"contact:{record_id}")
        change = edit_record(
            session, viewer=None, record=record, edit=RecordEdit(remove_emails=[address])
        )
    assert change.unlinked == expected and links_of(any_app, record_id) == 0


def test_above_the_inline_limit_the_background_thread_makes_the_same_links(
    sqlite_app: App, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raws = raw_mail(corpus)
    company_id = store(sqlite_app, raws)
    address = busiest_sender(raws)
    expected = independent_count(sqlite_app, raws, address)
    monkeypatch.setattr(record_links, "INLINE_LIMIT", 5)
    monkeypatch.setattr(record_links, "CHUNK", 7)
    with transaction(sqlite_app.sessions) as session:
        made = create_record(
            session,
            viewer=None,
            company_id=company_id,
            record_type="lead",
            name="Someone",
            emails=[EmailField("main", address)],
            app=sqlite_app,
        )
        record_id = made.record.id
    assert made.linked == 0 and made.queued >= expected
    deadline = time.monotonic() + 120  # a wait for the thread, not a timing assertion
    while record_links.relink_progress(record_id) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert record_links.relink_progress(record_id) is None
    assert links_of(sqlite_app, record_id) == expected

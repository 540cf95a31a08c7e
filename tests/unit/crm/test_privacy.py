"""Privacy and retention (issue 5, 15-16): sharing, retention, disconnecting, search.
What each member sees through the API: tests/interfaces/api/test_visibility.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from mailroom.app import App
from mailroom.crm import access
from mailroom.crm.companies import get_user
from mailroom.crm.retention import (
    disconnect_mailbox,
    purge_unlinked,
    retention_preview,
    set_privacy,
)
from mailroom.db.engine import transaction
from mailroom.db.models import Mailbox, Message, MessageCopy, Record
from mailroom.errors import BadInput, NotFound
from mailroom.mailboxes.store import add_mailbox
from mailroom.sync.engine import sync_mailbox
from mailroom_testing.builders import build_message
from mailroom_testing.memory_source import MemorySource
from tests.conftest_web import Tenant, seed_tenant


def later_source(*messages: bytes) -> MemorySource:
    """A source for a mailbox already synced once: its UIDs start past the seeded ones."""
    source = MemorySource()
    source.folders["INBOX"].uidnext = 1000
    for data in messages:
        source.folders["INBOX"].append(data)
    return source


@pytest.fixture
def alpha(sqlite_app: App, fast_hashing: None) -> Tenant:
    return seed_tenant(sqlite_app, "Alpha")


def test_only_the_owner_or_an_admin_sets_sharing(sqlite_app: App, alpha: Tenant) -> None:
    with transaction(sqlite_app.sessions) as session:
        member = access.viewer_for(session, get_user(session, alpha.member))
        with pytest.raises(NotFound):
            access.set_sharing(
                session, viewer=member, mailbox_id=alpha.mailbox_id, level="metadata"
            )
        admin = access.viewer_for(session, get_user(session, alpha.admin))
        with pytest.raises(BadInput):
            access.set_sharing(session, viewer=admin, mailbox_id=alpha.mailbox_id, level="all")


def test_retention_is_off_for_a_new_company_and_its_preview_counts_what_it_would_delete(
    sqlite_app: App, alpha: Tenant
) -> None:
    source = later_source(
        build_message(sender="stranger@nowhere.example", to=alpha.admin, subject="Unlinked")
    )
    assert sync_mailbox(sqlite_app, alpha.mailbox_id, opener=lambda _m, _a: source).error is None
    in_a_year = datetime.now(UTC) + timedelta(days=365)
    with transaction(sqlite_app.sessions) as session:
        assert not access.privacy_of(session, alpha.company_id).retention_enabled
        assert purge_unlinked(session, company_id=alpha.company_id, now=in_a_year) == 0
        assert retention_preview(session, company_id=alpha.company_id, now=in_a_year) == 1
        assert retention_preview(session, company_id=alpha.company_id, days=400) == 0
        assert "Unlinked" in set(session.scalars(select(Message.subject)))


def test_retention_deletes_old_unlinked_mail_and_keeps_linked_mail(
    sqlite_app: App, alpha: Tenant
) -> None:
    source = later_source(
        build_message(sender="stranger@nowhere.example", to=alpha.admin, subject="Unlinked")
    )
    assert sync_mailbox(sqlite_app, alpha.mailbox_id, opener=lambda _m, _a: source).error is None
    with transaction(sqlite_app.sessions) as session:
        set_privacy(session, company_id=alpha.company_id, retention_enabled=True)
        assert purge_unlinked(session, company_id=alpha.company_id) == 0  # not 7 days old yet
        in_six = datetime.now(UTC) + timedelta(days=6)
        assert purge_unlinked(session, company_id=alpha.company_id, now=in_six) == 0
        in_eight = datetime.now(UTC) + timedelta(days=8)
        assert retention_preview(session, company_id=alpha.company_id, now=in_eight) == 1
        assert purge_unlinked(session, company_id=alpha.company_id, now=in_eight) == 1
        subjects = set(session.scalars(select(Message.subject)))
    assert "Unlinked" not in subjects and "Quote for Alpha" in subjects
    assert len(subjects) == 3


def test_retention_days_are_per_company_and_can_be_turned_off(
    sqlite_app: App, alpha: Tenant
) -> None:
    source = later_source(
        build_message(sender="stranger@nowhere.example", to=alpha.admin, subject="Unlinked")
    )
    sync_mailbox(sqlite_app, alpha.mailbox_id, opener=lambda _m, _a: source)
    in_two = datetime.now(UTC) + timedelta(days=2)
    with transaction(sqlite_app.sessions) as session:
        set_privacy(session, company_id=alpha.company_id, retention_enabled=False)
        assert (
            purge_unlinked(session, company_id=alpha.company_id, now=in_two + timedelta(days=30))
            == 0
        )
        set_privacy(session, company_id=alpha.company_id, retention_days=1, retention_enabled=True)
        assert purge_unlinked(session, company_id=alpha.company_id, now=in_two) == 1
        with pytest.raises(BadInput):
            set_privacy(session, company_id=alpha.company_id, retention_days=0)


def _second_mailbox_with_one_shared_message(sqlite_app: App, alpha: Tenant) -> int:
    """A second mailbox (the member's) that saw the first message too, plus one of its own."""
    with transaction(sqlite_app.sessions) as session:
        member = get_user(session, alpha.member)
        box = add_mailbox(
            session, sqlite_app.secrets, user=member, host="imap.test", port=993, password="pw-456"
        )
        box_id = box.id
        first_header = session.scalar(
            select(Message.message_id).where(Message.id == alpha.message_ids[0])
        )
    source = MemorySource()
    source.folders["INBOX"].append(
        build_message(
            sender="jo@client-alpha.example",
            to=alpha.member,
            subject="Quote for Alpha",
            message_id=f"<{first_header}>",
            minutes=1,
        )
    )
    source.folders["INBOX"].append(
        build_message(
            sender="jo@client-alpha.example",
            to=alpha.member,
            subject="Only in the second",
            minutes=5,
        )
    )
    assert sync_mailbox(sqlite_app, box_id, opener=lambda _m, _a: source).error is None
    return box_id


def test_disconnect_removing_mail_keeps_what_another_mailbox_saw(
    sqlite_app: App, alpha: Tenant
) -> None:
    box_id = _second_mailbox_with_one_shared_message(sqlite_app, alpha)
    with transaction(sqlite_app.sessions) as session:
        mailbox = session.get(Mailbox, box_id)
        assert mailbox is not None
        assert disconnect_mailbox(session, mailbox=mailbox, remove_mail=True) == 1
    with sqlite_app.sessions() as session:
        subjects = list(session.scalars(select(Message.subject)))
        assert "Only in the second" not in subjects and "Quote for Alpha" in subjects
        assert session.get(Mailbox, box_id) is None
        assert (
            session.scalar(
                select(func.count())
                .select_from(MessageCopy)
                .where(MessageCopy.mailbox_id == box_id)
            )
            == 0
        )


def test_disconnect_keeping_mail_keeps_every_message(sqlite_app: App, alpha: Tenant) -> None:
    box_id = _second_mailbox_with_one_shared_message(sqlite_app, alpha)
    with transaction(sqlite_app.sessions) as session:
        before = session.scalar(select(func.count()).select_from(Message))
        mailbox = session.get(Mailbox, box_id)
        assert mailbox is not None
        assert disconnect_mailbox(session, mailbox=mailbox, remove_mail=False) == 0
        assert session.scalar(select(func.count()).select_from(Message)) == before
        record = session.get(Record, alpha.contact_id)
        assert record is not None


def test_search_never_crosses_companies(sqlite_app: App, fast_hashing: None) -> None:
    alpha = seed_tenant(sqlite_app, "Alpha")
    seed_tenant(sqlite_app, "Beta")
    with sqlite_app.sessions() as session:
        viewer = access.viewer_for(session, get_user(session, alpha.member))
        names = [r.name for r in access.search_records(session, viewer=viewer, q="client")]
    assert names == ["Jo Alpha", "Client Alpha"] or sorted(names) == ["Client Alpha", "Jo Alpha"]

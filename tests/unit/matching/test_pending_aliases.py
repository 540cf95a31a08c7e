"""A pending alias is a claim, not an address of the company (issue 11, item 1).

Before: every alias a member typed counted as theirs for matching, so claiming an outside
address made its mail with colleagues `internal` (skipped, its content never kept) and its
mail to clients `outbound`, on the member's word alone. Only an approved alias counts.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mailroom.app import App
from mailroom.crm.companies import get_company
from mailroom.crm.records import EmailField, add_record
from mailroom.db.engine import transaction
from mailroom.db.models import MailboxAlias, Message, User
from mailroom.dropbox.service import company_sender
from mailroom.mailboxes.store import add_mailbox
from tests.helpers.matching_kit import ingest, links_of, mail, setup, skip_of

CLAIMED = "boss@partner.example"


@pytest.fixture
def claimed(sqlite_app: App) -> tuple[App, int]:
    """Acme, a contact Jo, and a mailbox of Bob's claiming CLAIMED as a (pending) alias."""
    setup(sqlite_app)
    with transaction(sqlite_app.sessions) as session:
        company = get_company(session, "Acme")
        add_record(
            session,
            company=company,
            record_type="contact",
            name="Boss",
            emails=[EmailField("main", CLAIMED)],
        )
        bob = session.scalars(select(User).where(User.email == "bob@acme.example")).one()
        box = add_mailbox(
            session,
            sqlite_app.secrets,
            user=bob,
            host="imap.test",
            port=994,
            password="pw-123456",
            aliases=[CLAIMED],
        )
        return sqlite_app, box.id


def direction_of(app: App, message_id: str) -> str:
    with app.sessions() as session:
        return session.scalars(
            select(Message.direction).where(Message.message_id == message_id)
        ).one()


def approve(app: App, mailbox_id: int) -> None:
    with transaction(app.sessions) as session:
        alias = session.scalars(
            select(MailboxAlias).where(MailboxAlias.mailbox_id == mailbox_id)
        ).one()
        alias.approved = True


def test_a_pending_alias_does_not_make_mail_with_colleagues_internal(
    claimed: tuple[App, int],
) -> None:
    app, box_id = claimed
    ingest(app, box_id, mail(sender=CLAIMED, to="ann@acme.example", message_id="p1@x"))
    assert direction_of(app, "p1@x") == "inbound"
    assert skip_of(app, "p1@x") is None
    assert links_of(app, "p1@x")  # linked to the Boss contact, not dropped as internal


def test_a_pending_alias_does_not_make_mail_outbound_and_does_not_drop_into_the_company(
    claimed: tuple[App, int],
) -> None:
    app, box_id = claimed
    ingest(app, box_id, mail(sender=CLAIMED, to="jo@client.example", message_id="p2@x"))
    assert direction_of(app, "p2@x") == "inbound"
    with app.sessions() as session:
        company = get_company(session, "Acme")
        assert company_sender(session, company_id=company.id, address=CLAIMED) is None


def test_an_approved_alias_is_the_owners_own_address(claimed: tuple[App, int]) -> None:
    app, box_id = claimed
    approve(app, box_id)
    ingest(app, box_id, mail(sender=CLAIMED, to="jo@client.example", message_id="p3@x"))
    assert direction_of(app, "p3@x") == "outbound"
    ingest(app, box_id, mail(sender=CLAIMED, to="ann@acme.example", message_id="p4@x"))
    assert skip_of(app, "p4@x") == "filter:internal"
    with app.sessions() as session:
        company = get_company(session, "Acme")
        sender = company_sender(session, company_id=company.id, address=CLAIMED)
        assert sender is not None and sender.email == "bob@acme.example"

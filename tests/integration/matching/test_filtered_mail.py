"""Say what was filtered, on both databases: a record's skipped mail counted per reason
(against the mail the test generated), mail hidden by strict privacy counted, and the mail
a new blocklist entry already logged counted, then removed — hand-made links kept, a
second removal changing nothing."""

from __future__ import annotations

import dataclasses

from sqlalchemy import select

from mailroom.app import App
from mailroom.crm.access import Viewer, viewer_for
from mailroom.crm.companies import get_company
from mailroom.crm.retention import set_privacy
from mailroom.db.engine import transaction
from mailroom.db.models import Message, Record, User
from mailroom.matching.blocklist import add_entry
from mailroom.matching.manual import link_by_hand
from mailroom.services.filtered_mail import (
    blocked_logged,
    filtered_for_record,
    filtered_messages,
    remove_blocked_logged,
)
from tests.helpers.matching_kit import ingest, links_of, mail, record, setup

JO = "Jo Client <jo@client.example>"


def _viewer(app: App, email: str, *, admin: bool = False) -> Viewer:
    with app.sessions() as session:
        user = session.scalars(select(User).where(User.email == email)).one()
        return dataclasses.replace(viewer_for(session, user), is_admin=admin)


def _summary(app: App, viewer: Viewer, record_id: int) -> tuple[dict[str, int], int]:
    with app.sessions() as session:
        row = session.get(Record, record_id)
        assert row is not None
        summary = filtered_for_record(session, viewer=viewer, record=row)
        return summary.skipped, summary.hidden


def _load(app: App) -> tuple[int, int]:
    ids = setup(app)
    jo = record(app, "contact", "Jo", "jo@client.example")
    bulk = [("List-Id", "<offers.client.example>"), ("Precedence", "bulk")]
    ingest(
        app,
        ids.ann_box,
        mail(sender=JO, subject="Question", message_id="q1@x"),
        mail(sender=JO, subject="Another question", message_id="q2@x"),
        *(mail(sender=JO, subject=f"Offer {n}", headers=bulk) for n in range(3)),
        mail(sender=JO, subject="Out of office", headers=[("Auto-Submitted", "auto-replied")]),
        *(mail(sender=JO, subject=f"Confidential: prices {n}") for n in range(2)),
        mail(sender="news@other.example", subject="Unrelated", headers=bulk),
    )
    return ids.bob_box, jo


def test_a_records_skipped_mail_is_counted_per_reason(any_app: App) -> None:
    _bob_box, jo = _load(any_app)
    ann = _viewer(any_app, "ann@acme.example")
    skipped, hidden = _summary(any_app, ann, jo)
    assert skipped == {"filter:bulk": 4, "filter:confidential": 2}
    assert hidden == 0  # transparent company
    with any_app.sessions() as session:
        row = session.get(Record, jo)
        assert row is not None
        listed = filtered_messages(session, viewer=ann, record=row)
    assert len(listed) == 6 and {m["reason"] for m in listed} == set(skipped)
    assert all(m["detail"] for m in listed)


def test_under_strict_privacy_the_timeline_says_how_many_messages_are_hidden(
    any_app: App,
) -> None:
    bob_box, jo = _load(any_app)
    ingest(any_app, bob_box, mail(sender=JO, to="bob@acme.example", subject="For Bob"))
    with transaction(any_app.sessions) as session:
        set_privacy(session, company_id=get_company(session, "Acme").id, visibility="strict")
    _skipped, hidden = _summary(any_app, _viewer(any_app, "ann@acme.example"), jo)
    assert hidden == 1
    _skipped, hidden = _summary(any_app, _viewer(any_app, "bob@acme.example"), jo)
    assert hidden == 2  # Ann's two questions


def test_blocking_an_address_removes_what_it_logged_but_keeps_links_made_by_hand(
    any_app: App,
) -> None:
    _bob_box, jo = _load(any_app)
    case = record(any_app, "case", "Order 1")
    with transaction(any_app.sessions) as session:
        message = session.scalars(select(Message).where(Message.message_id == "q1@x")).one()
        link_by_hand(session, message=message, record=session.get(Record, case))  # type: ignore[arg-type]
        add_entry(session, company=get_company(session, "Acme"), entry="@client.example")
    admin = _viewer(any_app, "ann@acme.example", admin=True)
    with any_app.sessions() as session:
        assert blocked_logged(session, viewer=admin, entry="@client.example") == 2
    with transaction(any_app.sessions) as session:
        assert remove_blocked_logged(session, viewer=admin, entry="@client.example") == 2
    assert links_of(any_app, "q1@x") == {f"case:{case}": "manual"}
    assert links_of(any_app, "q2@x") == {}
    skipped, _hidden = _summary(any_app, admin, jo)
    assert skipped == {"filter:blocklist": 2, "filter:bulk": 4, "filter:confidential": 2}
    with transaction(any_app.sessions) as session:
        assert remove_blocked_logged(session, viewer=admin, entry="@client.example") == 0

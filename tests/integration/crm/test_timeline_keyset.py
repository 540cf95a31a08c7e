"""A record's timeline paged by keyset on `ix_message_links_record_date` (issue 15, item 3),
on both databases: the link carries its message's date (database triggers, whoever writes
the link), and walking every page gives exactly the order of the messages' own dates
(newest first, ties by id, undated mail last), each message once; in strict mode every
page holds only what the viewer may see."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

from sqlalchemy import select, update

from mailroom.app import App
from mailroom.crm import access
from mailroom.db.engine import transaction
from mailroom.db.models import Message, MessageLink, Record, User
from mailroom.db.web_models import DEFAULT_RETENTION_DAYS, CompanyPrivacy
from mailroom.matching.manual import link_by_hand
from tests.helpers.matching_kit import ingest, mail, record, setup


def undated(n: int, to: str = "ann@acme.example") -> bytes:
    """A message from Jo without a Date header (stored with no date)."""
    return (
        f"From: Jo Client <jo@client.example>\r\nTo: {to}\r\nSubject: undated {n}\r\n"
        f"Message-ID: <undated{n}@test.example>\r\n\r\nHello\r\n"
    ).encode()


def fill(app: App) -> tuple[int, int]:
    """Jo's contact with 23 messages in Ann's box (dates with ties, three undated) and 9 in
    Bob's, to Bob only; returns (contact id, Ann's user id)."""
    ids = setup(app)
    jo = record(app, "contact", "Jo", "jo@client.example")
    ingest(
        app,
        ids.ann_box,
        *(mail(minutes=n // 3, subject=f"ann {n}") for n in range(20)),  # three per minute
        *(undated(n) for n in range(3)),
    )
    ingest(
        app,
        ids.bob_box,
        *(mail(minutes=n, to="bob@acme.example", subject=f"bob {n}") for n in range(8)),
        undated(9, to="bob@acme.example"),
    )
    with app.sessions() as session:
        ann = session.scalars(select(User).where(User.email == "ann@acme.example")).one()
        return jo, ann.id


def expected_order(app: App, record_id: int, *, visible_to: int | None = None) -> list[int]:
    """The record's messages by their own date (newest first, then id; undated last),
    computed in Python; only those `visible_to` may see when given (crm.access's SQL rule
    for single messages, independent of the timeline's)."""
    with app.sessions() as session:
        query = select(Message.id, Message.date_utc).join(
            MessageLink, MessageLink.message_id == Message.id
        )
        query = query.where(MessageLink.record_id == record_id)
        if visible_to is not None:
            user = session.get(User, visible_to)
            assert user is not None
            viewer = access.viewer_for(session, user)
            query = query.where(access.visible_messages(session, viewer))
        rows = session.execute(query).all()
    dated = sorted((r for r in rows if r.date_utc is not None), key=lambda r: (r[1], r[0]))
    undated_ids = sorted((r[0] for r in rows if r.date_utc is None), reverse=True)
    return [r[0] for r in reversed(dated)] + undated_ids


def walk(app: App, record_id: int, user_id: int, *, limit: int) -> list[int]:
    """Every page of the timeline as the user sees it, cursor to cursor."""
    seen: list[int] = []
    after = None
    with app.sessions() as session:
        user = session.get(User, user_id)
        rec = session.get(Record, record_id)
        assert user is not None and rec is not None
        viewer = access.viewer_for(session, user)
        while True:
            page = access.visible_timeline_page(
                session, viewer=viewer, record=rec, after=after, limit=limit
            )
            assert len(page.entries) <= limit
            seen += [e.id for e in page.entries]
            if page.next is None:
                return seen
            assert page.next == page.entries[-1].id
            after = page.next


def test_every_link_carries_its_messages_date_whoever_wrote_it_and_when_it_changes(
    any_app: App,
) -> None:
    jo, ann = fill(any_app)
    kim = record(any_app, "contact", "Kim", "kim@other.example")
    with transaction(any_app.sessions) as session:
        first = session.scalars(select(Message).order_by(Message.id)).first()
        rec = session.get(Record, kim)
        assert first is not None and rec is not None
        link_by_hand(session, message=first, record=rec)  # the ORM path, not the linker's
        moved = first.id
    with transaction(any_app.sessions) as session:
        new_date = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
        session.execute(update(Message).where(Message.id == moved).values(date_utc=new_date))
    with any_app.sessions() as session:
        pairs = session.execute(
            select(MessageLink.message_date, Message.date_utc).join(
                Message, Message.id == MessageLink.message_id
            )
        ).all()
    assert len(pairs) == 32 + 1
    assert all(link == message for link, message in pairs)
    assert sum(1 for link, _ in pairs if link is None) == 4
    # The message whose date moved to 2031 now leads Jo's timeline.
    assert walk(any_app, jo, ann, limit=50)[0] == moved


def test_walking_the_pages_gives_the_dates_order_each_message_once(any_app: App) -> None:
    jo, ann = fill(any_app)
    expected = expected_order(any_app, jo)
    assert len(expected) == 32
    for limit in (1, 4, 7, 32, 50):  # page ends inside a tie, at the undated, past the end
        assert walk(any_app, jo, ann, limit=limit) == expected


def test_strict_pages_hold_only_what_the_viewer_may_see_in_the_same_order(any_app: App) -> None:
    jo, ann = fill(any_app)
    with any_app.sessions() as session:
        company_id = session.scalars(select(Record.company_id).where(Record.id == jo)).one()
    with transaction(any_app.sessions) as session:
        session.add(
            CompanyPrivacy(
                company_id=company_id,
                visibility="strict",
                retention_days=DEFAULT_RETENTION_DAYS,
                retention_enabled=False,
            )
        )
    expected = expected_order(any_app, jo, visible_to=ann)
    assert len(expected) == 23  # Ann's own mail; Bob's nine to Bob only are left out
    for limit in (1, 5, 50):
        assert walk(any_app, jo, ann, limit=limit) == expected
    # Bob, though he sees his nine, sees none of Ann's: they were to her, from her box.
    with any_app.sessions() as session:
        bob = session.scalars(select(User).where(User.email == "bob@acme.example")).one()
    bob_expected = expected_order(any_app, jo, visible_to=bob.id)
    assert len(bob_expected) == 9
    assert walk(any_app, jo, bob.id, limit=4) == bob_expected


def test_a_cursor_inside_a_run_of_equal_dates_continues_after_it(any_app: App) -> None:
    jo, ann = fill(any_app)
    expected = expected_order(any_app, jo)
    with any_app.sessions() as session:
        dates = dict(session.execute(select(Message.id, Message.date_utc)).tuples().all())
        user = session.get(User, ann)
        rec = session.get(Record, jo)
        assert user is not None and rec is not None
        viewer = access.viewer_for(session, user)
        for i, cursor in enumerate(expected[:-1]):
            page = access.visible_timeline_page(
                session, viewer=viewer, record=rec, after=cursor, limit=2
            )
            assert [e.id for e in page.entries] == expected[i + 1 : i + 3]
    ties = [m for m in expected if dates[m] is not None]
    assert any(dates[a] == dates[b] for a, b in pairwise(ties))
    assert timedelta(0) < max(d for d in dates.values() if d) - min(d for d in dates.values() if d)

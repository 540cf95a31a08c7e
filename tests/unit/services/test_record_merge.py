"""Merging records (services.record_merge.MERGE_STEPS): the survivor keeps its own links
and removals, gains the source's links, addresses and child records, and nothing of the
source is left behind."""

from __future__ import annotations

from sqlalchemy import func, select

from mailroom.app import App
from mailroom.crm.records import EmailField
from mailroom.db.engine import transaction
from mailroom.db.matching_models import LinkTombstone
from mailroom.db.models import Message, MessageLink, Record
from mailroom.matching.manual import link_by_hand, unlink_by_hand
from mailroom.services.records import create_record, find_record, merge_records
from tests.helpers.matching_kit import ingest, mail, setup


def test_merge_moves_links_and_children_and_the_survivors_removal_wins(sqlite_app: App) -> None:
    ids = setup(sqlite_app)
    ingest(
        sqlite_app,
        ids.ann_box,
        mail(sender="Jo <jo@client.example>", message_id="one@t"),
        mail(sender="Jo <jo@client.example>", message_id="two@t"),
        mail(sender="Kim <kim@other.example>", message_id="three@t"),
    )
    with transaction(sqlite_app.sessions) as session:
        messages = dict(session.execute(select(Message.message_id, Message)).all())
        survivor = create_record(
            session, viewer=None, company_id=ids.company_id, record_type="account", name="Keep"
        ).record
        source = create_record(
            session,
            viewer=None,
            company_id=ids.company_id,
            record_type="account",
            name="Dup",
            emails=[EmailField("main", "jo@client.example")],
        ).record
        child = create_record(
            session,
            viewer=None,
            company_id=ids.company_id,
            record_type="contact",
            name="Kim",
            emails=[EmailField("main", "kim@other.example")],
            account_id=source.id,
        ).record
        link_by_hand(session, message=messages["two@t"], record=survivor)
        unlink_by_hand(session, message=messages["two@t"], record=survivor)  # removed by hand
        link_by_hand(session, message=messages["three@t"], record=source)
        keep_id, gone_id, child_id = survivor.id, source.id, child.id
    with transaction(sqlite_app.sessions) as session:
        merged = merge_records(
            session,
            viewer=None,
            survivor=find_record(session, viewer=None, ref=f"account:{keep_id}"),
            source=find_record(session, viewer=None, ref=f"account:{gone_id}"),
        )
        assert [e.address for e in merged.emails] == ["jo@client.example"]
    with sqlite_app.sessions() as session:
        links = dict(
            session.execute(
                select(Message.message_id, MessageLink.reason)
                .join(MessageLink, MessageLink.message_id == Message.id)
                .where(MessageLink.record_id == keep_id)
            ).all()
        )
        assert links == {"one@t": "address:main", "three@t": "manual"}  # two@t stays removed
        assert session.get(Record, gone_id) is None
        child_row = session.get(Record, child_id)
        assert child_row is not None and child_row.account_id == keep_id
        left = session.scalar(
            select(func.count())
            .select_from(LinkTombstone)
            .where(LinkTombstone.record_id == gone_id)
        )
        assert left == 0

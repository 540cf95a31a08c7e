"""Conversations on both databases: a chain joined late merges two stored conversations
(PostgreSQL runs the advisory lock, INSERT … RETURNING and the relabelling for real)."""

from __future__ import annotations

from sqlalchemy import func, select

from mailroom.app import App
from mailroom.db.models import Conversation
from tests.helpers.matching_kit import ingest, mail, setup
from tests.unit.matching.test_conversations import conversations, reply


def test_a_late_parent_merges_two_conversations_on_both_databases(any_app: App) -> None:
    ids = setup(any_app)
    ingest(any_app, ids.ann_box, reply("c@x", parent="b@x", references="<b@x>", minutes=2))
    ingest(any_app, ids.bob_box, mail(message_id="a@x", subject="Quote"))
    ingest(any_app, ids.ann_box, reply("b@x", parent="a@x", references="<a@x>", minutes=1))
    keys = conversations(any_app, ids.company_id)
    assert keys["a@x"] == keys["b@x"] == keys["c@x"]
    with any_app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Conversation)) == 1


def test_one_batch_merging_two_pairs_of_conversations_keeps_them_two(any_app: App) -> None:
    """Several merges in one batch (one UPDATE … CASE for all of them) and several new
    conversations in one INSERT: each chain ends in its own conversation."""
    ids = setup(any_app)
    ingest(
        any_app,
        ids.ann_box,
        reply("c1@x", parent="b1@x", references="<b1@x>", minutes=2, subject="Re: Quote"),
        reply("c2@x", parent="b2@x", references="<b2@x>", minutes=2, subject="Re: Invoice"),
    )
    ingest(
        any_app,
        ids.bob_box,
        mail(message_id="a1@x", subject="Quote"),
        mail(message_id="a2@x", subject="Invoice"),
    )
    ingest(
        any_app,
        ids.ann_box,
        reply("b1@x", parent="a1@x", references="<a1@x>", minutes=1, subject="Re: Quote"),
        reply("b2@x", parent="a2@x", references="<a2@x>", minutes=1, subject="Re: Invoice"),
    )
    keys = conversations(any_app, ids.company_id)
    assert keys["a1@x"] == keys["b1@x"] == keys["c1@x"]
    assert keys["a2@x"] == keys["b2@x"] == keys["c2@x"]
    assert keys["a1@x"] != keys["a2@x"]
    with any_app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Conversation)) == 2

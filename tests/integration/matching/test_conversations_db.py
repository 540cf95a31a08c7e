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

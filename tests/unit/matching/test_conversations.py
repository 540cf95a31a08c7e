"""Conversations: References/In-Reply-To chains in any order of arrival, merges of
conversations that were apart, the subject fallback, and the timeline's `conversation`."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select, update

from mailroom.app import App
from mailroom.connectors.base import RawMessage
from mailroom.crm.companies import add_company, get_company
from mailroom.crm.records import EmailField, add_record
from mailroom.crm.timeline import timeline_entries
from mailroom.db.engine import transaction
from mailroom.db.models import Conversation, ConversationNode, Message, Record
from mailroom.ingest.batch import IngestTarget, ingest_batch
from mailroom.matching.conversations import backfill, conversation_keys
from mailroom.matching.directory import load_directory
from mailroom.matching.manual import link_by_hand
from tests.helpers.matching_kit import ingest, links_of, mail, setup

_companies = itertools.count(1)


def conversations(app: App, company_id: int) -> dict[str, str]:
    """Message-ID → conversation, for every stored message of the company."""
    with app.sessions() as session:
        rows = {
            mid: message_id
            for mid, message_id in session.execute(
                select(Message.id, Message.message_id).where(Message.company_id == company_id)
            )
        }
        keys = conversation_keys(session, list(rows))
        return {rows[mid]: key for mid, key in keys.items()}


def reply(message_id: str, *, parent: str, references: str, minutes: int, **kw: str) -> bytes:
    """A reply whose In-Reply-To is `parent` and whose References is `references` as given."""
    return mail(
        message_id=message_id,
        minutes=minutes,
        headers=[("In-Reply-To", f"<{parent}>"), ("References", references)],
        **kw,
    )


def test_a_reply_naming_only_its_parent_is_in_the_grandparents_conversation(
    sqlite_app: App,
) -> None:
    ids = setup(sqlite_app)
    ingest(sqlite_app, ids.ann_box, mail(message_id="a@x", subject="Quote"))
    ingest(sqlite_app, ids.ann_box, reply("b@x", parent="a@x", references="<a@x>", minutes=1))
    ingest(sqlite_app, ids.ann_box, reply("c@x", parent="b@x", references="<b@x>", minutes=2))
    ingest(sqlite_app, ids.ann_box, mail(message_id="d@x", subject="Other", minutes=3))
    keys = conversations(sqlite_app, ids.company_id)
    assert keys["a@x"] == keys["b@x"] == keys["c@x"]
    assert keys["d@x"] != keys["a@x"]


def test_a_late_message_joining_two_conversations_merges_them(sqlite_app: App) -> None:
    ids = setup(sqlite_app)
    # C names only B, and A is stored apart: two conversations until B arrives.
    ingest(sqlite_app, ids.ann_box, reply("c@x", parent="b@x", references="<b@x>", minutes=2))
    ingest(sqlite_app, ids.ann_box, mail(message_id="a@x", subject="Quote"))
    before = conversations(sqlite_app, ids.company_id)
    assert before["a@x"] != before["c@x"]
    ingest(sqlite_app, ids.ann_box, reply("b@x", parent="a@x", references="<a@x>", minutes=1))
    keys = conversations(sqlite_app, ids.company_id)
    assert keys["a@x"] == keys["b@x"] == keys["c@x"]


def test_mail_without_references_joins_by_subject_people_and_time(sqlite_app: App) -> None:
    ids = setup(sqlite_app)
    day = 24 * 60
    ingest(
        sqlite_app,
        ids.ann_box,
        mail(message_id="o@x", subject="Gas nominations for May"),
        mail(message_id="r@x", subject="RE: Gas nominations for May", minutes=day),
        mail(message_id="f@x", subject="FW: AW: re[2]: gas  nominations for may", minutes=2 * day),
        # Same subject, other people: not the same conversation.
        mail(
            message_id="s@x",
            sender="zed@elsewhere.example",
            to="bob@acme.example",
            subject="Re: Gas nominations for May",
            minutes=day,
        ),
        # Same people and subject, but two months later: a new conversation.
        mail(message_id="l@x", subject="Re: Gas nominations for May", minutes=62 * day),
    )
    keys = conversations(sqlite_app, ids.company_id)
    assert keys["o@x"] == keys["r@x"] == keys["f@x"]
    assert len({keys["o@x"], keys["s@x"], keys["l@x"]}) == 3


def test_two_clients_writing_the_same_subject_to_one_salesperson_are_two_conversations(
    sqlite_app: App,
) -> None:
    ids = setup(sqlite_app)
    ingest(
        sqlite_app,
        ids.ann_box,
        mail(message_id="p@x", sender="jo@client.example", subject="Quote request"),
        mail(message_id="q@x", sender="max@other.example", subject="Quote request", minutes=9),
        # Ann forwarding one to Bob inside Acme bridges neither (it could be either).
        mail(
            message_id="w@x",
            sender="ann@acme.example",
            to="bob@acme.example",
            subject="Fwd: Quote request",
            minutes=20,
        ),
    )
    keys = conversations(sqlite_app, ids.company_id)
    assert keys["p@x"] != keys["q@x"]
    assert keys["w@x"] not in (keys["p@x"], keys["q@x"])


def test_timeline_items_carry_the_conversation(sqlite_app: App) -> None:
    ids = setup(sqlite_app)
    with transaction(sqlite_app.sessions) as session:
        acme = get_company(session, "Acme")
        add_record(
            session,
            company=acme,
            record_type="contact",
            name="Jo",
            emails=[EmailField("main", "jo@client.example")],
        )
    ingest(sqlite_app, ids.ann_box, mail(message_id="a@x"))
    ingest(sqlite_app, ids.ann_box, reply("b@x", parent="a@x", references="<a@x>", minutes=1))
    ingest(sqlite_app, ids.ann_box, mail(message_id="z@x", subject="Unrelated", minutes=5))
    with sqlite_app.sessions() as session:
        records = list(session.scalars(select(Record)))
        items = [e.to_json() for e in timeline_entries(session, records=records)]
    by_id = {i["message_id"]: i["conversation"] for i in items}
    assert by_id["a@x"] == by_id["b@x"] != by_id["z@x"]
    assert all(isinstance(v, str) and v for v in by_id.values())


@dataclass(frozen=True)
class Tree:
    """A reply tree: parents[i] is the index of message i's parent (None for the root)."""

    parents: tuple[int | None, ...]


@st.composite
def trees(draw: st.DrawFn) -> Tree:
    size = draw(st.integers(1, 7))
    parents: list[int | None] = [None]
    for i in range(1, size):
        parents.append(draw(st.integers(0, i - 1)))
    return Tree(tuple(parents))


def chain(tree: Tree, i: int) -> list[int]:
    out: list[int] = []
    node = tree.parents[i]
    while node is not None:
        out.insert(0, node)
        node = tree.parents[node]
    return out


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), forest=st.lists(trees(), min_size=1, max_size=3))
def test_any_arrival_order_of_reply_trees_gives_one_conversation_per_tree(
    sqlite_app: App, data: st.DataObject, forest: list[Tree]
) -> None:
    n = next(_companies)
    with transaction(sqlite_app.sessions) as session:
        company = add_company(session, name=f"Co{n}", domains=[f"co{n}.example"])
        company_id = company.id
    messages: list[tuple[str, int, bytes]] = []
    for t, tree in enumerate(forest):
        for i in range(len(tree.parents)):
            mid = f"t{t}m{i}@co{n}"
            ancestors = chain(tree, i)
            kw = {"sender": f"p{t}@t{t}.example", "to": f"q{t}@t{t}.example"}
            if not ancestors:
                raw = mail(message_id=mid, subject=f"Topic {t}", minutes=i, **kw)
            else:
                # References as clients write them: whole chain, or cut to the last few.
                keep = data.draw(st.integers(1, len(ancestors)), label="refs kept")
                refs = " ".join(f"<t{t}m{a}@co{n}>" for a in ancestors[-keep:])
                parent = f"t{t}m{ancestors[-1]}@co{n}"
                raw = reply(mid, parent=parent, references=refs, minutes=i, **kw)
            messages.append((mid, t, raw))
    order = data.draw(st.permutations(messages), label="arrival order")
    cuts = data.draw(st.lists(st.integers(0, len(order)), max_size=3), label="batch cuts")
    bounds = sorted({0, len(order), *cuts})
    for start, end in itertools.pairwise(bounds):
        _ingest_company(sqlite_app, company_id, [raw for _, _, raw in order[start:end]])
    keys = conversations(sqlite_app, company_id)
    per_tree: dict[int, set[str]] = {}
    for mid, t, _ in messages:
        per_tree.setdefault(t, set()).add(keys[mid])
    assert all(len(v) == 1 for v in per_tree.values())
    assert len({next(iter(v)) for v in per_tree.values()}) == len(forest)


def _ingest_company(app: App, company_id: int, raws: list[bytes]) -> None:
    if not raws:
        return
    with transaction(app.sessions) as session:
        target = IngestTarget(
            company_id=company_id,
            mailbox_id=None,
            directory=load_directory(session, company_id),
            blobs=app.blobs,
        )
        batch = [
            RawMessage(folder="INBOX", uidvalidity=1, uid=i + 1, data=d) for i, d in enumerate(raws)
        ]
        ingest_batch(session, target, batch)


def test_a_reply_without_references_follows_its_conversations_case(sqlite_app: App) -> None:
    ids = setup(sqlite_app)
    ingest(sqlite_app, ids.ann_box, mail(message_id="a@x", subject="Broken pump"))
    with transaction(sqlite_app.sessions) as session:
        case = add_record(
            session, company=get_company(session, "Acme"), record_type="case", name="Pump"
        )
        message = session.scalars(select(Message).where(Message.message_id == "a@x")).one()
        link_by_hand(session, message=message, record=case)
        case_ref = f"case:{case.id}"
    # Outlook-style: no References, no In-Reply-To, only the subject says it is a reply.
    ingest(sqlite_app, ids.ann_box, mail(message_id="b@x", subject="RE: Broken pump", minutes=60))
    ingest(sqlite_app, ids.ann_box, mail(message_id="c@x", subject="Other pump", minutes=61))
    assert links_of(sqlite_app, "b@x").get(case_ref) == "thread"
    assert case_ref not in links_of(sqlite_app, "c@x")


def test_mail_stored_before_conversations_is_threaded_by_the_backfill(sqlite_app: App) -> None:
    ids = setup(sqlite_app)
    ingest(
        sqlite_app,
        ids.ann_box,
        reply("c@x", parent="b@x", references="<b@x>", minutes=2),
        mail(message_id="a@x", subject="Quote"),
        reply("b@x", parent="a@x", references="<a@x>", minutes=1),
        mail(message_id="r@x", subject="RE: Quote", minutes=3),
        mail(message_id="z@x", sender="max@other.example", subject="Other", minutes=4),
    )
    expected = conversations(sqlite_app, ids.company_id)
    with transaction(sqlite_app.sessions) as session:  # as before migration 0010
        session.execute(delete(ConversationNode))
        session.execute(delete(Conversation))
        session.execute(update(Message).values(subject_key=None, threaded=False))
    assert len(set(conversations(sqlite_app, ids.company_id).values())) == 5
    done = []
    while True:  # one message per chunk: the result must not depend on the chunking
        with transaction(sqlite_app.sessions) as session:
            count = backfill(session, limit=1)
        if not count:
            break
        done.append(count)
    assert len(done) == 5
    after = conversations(sqlite_app, ids.company_id)
    assert after["a@x"] == after["b@x"] == after["c@x"] == after["r@x"] != after["z@x"]
    assert len(set(after.values())) == len(set(expected.values()))


def test_one_batch_merging_a_conversation_while_another_message_joins_it(
    sqlite_app: App,
) -> None:
    ids = setup(sqlite_app)
    ingest(sqlite_app, ids.ann_box, mail(message_id="z@x", subject="Two", minutes=2))
    ingest(
        sqlite_app,
        ids.ann_box,
        mail(message_id="a@x", subject="One"),
        reply("b@x", parent="a@x", references="<a@x>", minutes=1),
    )
    # m1 joins a's and z's conversations; m2, in the same batch, joins a's through b.
    ingest(
        sqlite_app,
        ids.ann_box,
        reply("m1@x", parent="z@x", references="<a@x> <z@x>", minutes=3),
        reply("m2@x", parent="b@x", references="<b@x>", minutes=4),
    )
    keys = conversations(sqlite_app, ids.company_id)
    assert len({keys[m] for m in ("a@x", "b@x", "z@x", "m1@x", "m2@x")}) == 1

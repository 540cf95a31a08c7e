"""Conversations against the rule of matching/conversations.py's module doc, worked out
here pair by pair: random mail (shared and differing subjects, inside and outside people,
dates around the window's edge, replies to stored and to missing parents), arriving in
any order and any batches, must end in exactly the groups the rule gives."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailroom.app import App
from mailroom.crm.companies import add_company
from mailroom.db.engine import transaction
from mailroom.mail.threads import subject_key
from tests.helpers.matching_kit import mail
from tests.unit.matching.test_conversations import _ingest_company, conversations

WINDOW = timedelta(days=30)  # the module's, restated: the test states the rule itself
SUBJECTS = ("Quote request", "RE: Quote request", "Fwd: quote  request", "Invoice", "")
_companies = itertools.count(1)


@dataclass(frozen=True)
class Mail:
    """One generated message, as the rule sees it."""

    message_id: str
    subject: str
    minutes: int
    sender: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    parent: str | None  # In-Reply-To and References

    def people(self) -> frozenset[str]:
        return frozenset((self.sender, *self.to, *self.cc))


@st.composite
def mailboxes(draw: st.DrawFn, domain: str) -> list[Mail]:
    """Up to 9 messages among two inside and three outside people (so that subjects,
    people and dates coincide often), some replying to others or to missing messages."""
    people = [f"ann@{domain}", f"bob@{domain}", "jo@client.example", "max@other.example"]
    people.append("eve@client.example")
    count = draw(st.integers(1, 9))
    ids = [f"m{i}@{domain}" for i in range(count)]
    out = []
    for mid in ids:
        sender = draw(st.sampled_from(people))
        to = draw(st.lists(st.sampled_from(people), min_size=1, max_size=2, unique=True))
        cc = draw(st.lists(st.sampled_from(people), max_size=1))
        parent = draw(st.none() | st.sampled_from([*ids, f"gone@{domain}"]))
        day = draw(st.sampled_from([0, 1, 29, 30, 31, 45, 61]))
        out.append(
            Mail(
                message_id=mid,
                subject=draw(st.sampled_from(SUBJECTS)),
                minutes=day * 24 * 60 + draw(st.sampled_from([0, 0, 1])),
                sender=sender,
                to=tuple(to),
                cc=tuple(cc),
                parent=parent if parent != mid else None,
            )
        )
    return out


def expected_groups(messages: list[Mail], domain: str) -> set[frozenset[str]]:
    """The rule of the module doc, pair by pair, closed transitively."""
    up: dict[str, str] = {}

    def root(x: str) -> str:
        up.setdefault(x, x)
        while up[x] != x:
            x = up[x]
        return x

    for m in messages:
        root(m.message_id)
        if m.parent:
            up[root(m.message_id)] = root(m.parent)

    def outside(m: Mail) -> frozenset[str]:
        return frozenset(p for p in m.people() if not p.endswith(f"@{domain}"))

    for a, b in itertools.combinations(messages, 2):
        key = subject_key(a.subject)
        if not key or key != subject_key(b.subject):
            continue
        if a.parent and b.parent:
            continue
        if abs(a.minutes - b.minutes) > WINDOW.total_seconds() / 60:
            continue
        oa, ob = outside(a), outside(b)
        # outside people: one of them shared; none on either side: anyone shared
        if (oa & ob) if oa and ob else not oa and not ob and a.people() & b.people():
            up[root(a.message_id)] = root(b.message_id)
    groups: dict[str, set[str]] = {}
    for m in messages:
        groups.setdefault(root(m.message_id), set()).add(m.message_id)
    return {frozenset(g) for g in groups.values()}


def raw(m: Mail) -> bytes:
    headers = [("Cc", ", ".join(m.cc))] if m.cc else []
    if m.parent:
        headers += [("In-Reply-To", f"<{m.parent}>"), ("References", f"<{m.parent}>")]
    return mail(
        message_id=m.message_id,
        sender=m.sender,
        to=", ".join(m.to),
        subject=m.subject,
        minutes=m.minutes,
        headers=headers,
    )


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_batches_of_random_mail_end_in_the_groups_the_rule_gives(
    sqlite_app: App, data: st.DataObject
) -> None:
    n = next(_companies)
    domain = f"rule{n}.example"
    with transaction(sqlite_app.sessions) as session:
        company_id = add_company(session, name=f"Rule{n}", domains=[domain]).id
    messages = data.draw(mailboxes(domain), label="messages")
    order = data.draw(st.permutations(messages), label="arrival order")
    cuts = data.draw(st.lists(st.integers(0, len(order)), max_size=3), label="batch cuts")
    for start, end in itertools.pairwise(sorted({0, len(order), *cuts})):
        _ingest_company(sqlite_app, company_id, [raw(m) for m in order[start:end]])
    keys = conversations(sqlite_app, company_id)
    found: dict[str, set[str]] = {}
    for mid, key in keys.items():
        found.setdefault(key, set()).add(mid)
    assert {frozenset(g) for g in found.values()} == expected_groups(messages, domain)

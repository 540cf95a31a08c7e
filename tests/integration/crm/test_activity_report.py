"""The activity report on both databases, each count checked against an independent count
made from the generated raw mail (who sent it, who got it, which mailbox saw it), never
from Mailroom's tables."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from mailroom.app import App
from mailroom.crm.access import Viewer, viewer_for
from mailroom.crm.retention import set_privacy
from mailroom.db.engine import transaction
from mailroom.db.models import User
from mailroom.errors import BadInput
from mailroom.services.activity_report import activity_report
from tests.helpers.matching_kit import BASE, ingest, mail, record, setup

ANN, BOB = "ann@acme.example", "bob@acme.example"
JO, DEAL, STRANGER = "jo@client.example", "deal@bigco.example", "who@nowhere.example"
KNOWN = {JO: "lead", DEAL: "opportunity"}
START, END = date(2026, 3, 2), date(2026, 4, 5)


@dataclass(frozen=True)
class Sent:
    """One generated message as the test knows it: its people, day, and mailbox."""

    sender: str
    to: tuple[str, ...]
    day: int
    box: str  # "ann" or "bob": whose mailbox it was ingested from


def _generate(seed: int, n: int = 70) -> list[Sent]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        external = rng.choice([JO, DEAL, STRANGER, JO])
        internal = rng.sample([ANN, BOB], rng.choice([1, 1, 2]))
        if rng.random() < 0.5:
            sender, to = external, tuple(internal)
        else:
            sender, to = internal[0], (external, *internal[1:])
        out.append(Sent(sender, to, rng.randrange(0, 40), rng.choice(["ann", "bob"])))
    return out


def _load(app: App, sent: list[Sent]) -> dict[str, int]:
    ids = setup(app)
    record(app, "lead", "Jo", JO)
    record(app, "opportunity", "Big deal", DEAL, fields={"stage": "proposal"})
    boxes = {"ann": ids.ann_box, "bob": ids.bob_box}
    for box in ("ann", "bob"):
        ingest(
            app,
            boxes[box],
            *(
                mail(sender=s.sender, to=", ".join(s.to), minutes=s.day * 24 * 60)
                for s in sent
                if s.box == box
            ),
        )
    with app.sessions() as session:
        return {u.email: u.id for u in session.scalars(select(User))}


def _logged(s: Sent) -> bool:
    """Linked to a record and dated within START..END (days 35 to 39 are after END)."""
    return any(a in KNOWN for a in (s.sender, *s.to)) and s.day <= (END - START).days


def _expected_by_user(sent: list[Sent], seen: set[Sent] | None = None) -> dict[str, Counter[str]]:
    counts: dict[str, Counter[str]] = {ANN: Counter(), BOB: Counter()}
    for s in sent:
        if not _logged(s) or (seen is not None and s not in seen):
            continue
        kind = "sent" if s.sender in (ANN, BOB) else "received"
        for user in (ANN, BOB):
            if user in (s.sender, *s.to) or s.box == user.split("@")[0]:
                counts[user][kind] += 1
    return counts


def _viewer(app: App, email: str, *, admin: bool = False) -> Viewer:
    with app.sessions() as session:
        user = session.scalars(select(User).where(User.email == email)).one()
        return dataclasses.replace(viewer_for(session, user), is_admin=admin)


def _report(app: App, viewer: Viewer, by: str) -> list[dict[str, object]]:
    with app.sessions() as session:
        return activity_report(session, viewer=viewer, by=by, start=START, end=END).rows


def test_activity_per_user_week_type_and_stage_equals_a_count_from_the_raw_mail(
    any_app: App,
) -> None:
    sent = _generate(13)
    _load(any_app, sent)
    admin = _viewer(any_app, ANN, admin=True)
    expected = _expected_by_user(sent)
    by_user = {
        r["email"]: (r["sent"], r["received"], r["total"]) for r in _report(any_app, admin, "user")
    }
    assert by_user == {
        u: (c["sent"], c["received"], c["sent"] + c["received"]) for u, c in expected.items()
    }
    logged = [s for s in sent if _logged(s)]
    assert 0 < len(logged) < len(sent)  # the strangers' mail is not logged, the rest is
    weeks: Counter[tuple[str, str]] = Counter()
    for s in logged:
        monday = START + timedelta(weeks=s.day // 7)
        weeks[(monday.isoformat(), "sent" if s.sender in (ANN, BOB) else "received")] += 1
    rows = _report(any_app, admin, "week")
    assert [r["week"] for r in rows] == [(START + timedelta(weeks=w)).isoformat() for w in range(5)]
    for r in rows:
        assert (r["sent"], r["received"]) == (
            weeks[str(r["week"]), "sent"],
            weeks[str(r["week"]), "received"],
        )
    per_type = {r["type"]: r["total"] for r in _report(any_app, admin, "type")}
    assert per_type["lead"] == sum(1 for s in logged if JO in (s.sender, *s.to))
    assert per_type["opportunity"] == sum(1 for s in logged if DEAL in (s.sender, *s.to))
    assert per_type["case"] == 0
    stages = _report(any_app, admin, "stage")
    assert [(r["stage"], r["total"]) for r in stages] == [("proposal", per_type["opportunity"])]


def test_under_strict_privacy_a_member_counts_only_the_mail_they_may_see(any_app: App) -> None:
    sent = _generate(29)
    users = _load(any_app, sent)
    with transaction(any_app.sessions) as session:
        company_id = session.get(User, users[BOB])
        assert company_id is not None
        set_privacy(session, company_id=company_id.company_id, visibility="strict")
    bob = _viewer(any_app, BOB)
    bobs = {s for s in sent if BOB in (s.sender, *s.to) or s.box == "bob"}
    expected = _expected_by_user(sent, seen=bobs)
    rows = {r["email"]: (r["sent"], r["received"]) for r in _report(any_app, bob, "user")}
    assert rows == {u: (c["sent"], c["received"]) for u, c in expected.items()}
    # Bob's own row is whole; Ann's counts only what Bob shares, fewer than her whole row.
    whole = _expected_by_user(sent)
    assert rows[BOB] == (whole[BOB]["sent"], whole[BOB]["received"])
    ann_sent, ann_received = rows[ANN]
    assert isinstance(ann_sent, int) and isinstance(ann_received, int)
    assert ann_sent + ann_received < whole[ANN]["sent"] + whole[ANN]["received"]
    # An admin counts every logged message of the company.
    admin_rows = {
        r["email"]: (r["sent"], r["received"])
        for r in _report(any_app, _viewer(any_app, ANN, admin=True), "user")
    }
    assert admin_rows[ANN] == (whole[ANN]["sent"], whole[ANN]["received"])


@pytest.mark.parametrize(
    ("by", "start", "end"),
    [("month", START, END), ("week", END, START), ("week", date(2020, 1, 1), END)],
)
def test_a_bad_grouping_or_range_is_refused_with_how_to_fix_it(
    sqlite_app: App, by: str, start: date, end: date
) -> None:
    setup(sqlite_app)
    with sqlite_app.sessions() as session, pytest.raises(BadInput) as caught:
        activity_report(session, viewer=_viewer(sqlite_app, ANN), by=by, start=start, end=end)
    assert caught.value.hint
    assert BASE.date() == START


def test_one_users_mail_per_week_equals_a_count_from_the_raw_mail(any_app: App) -> None:
    sent = _generate(41)
    users = _load(any_app, sent)
    admin = _viewer(any_app, ANN, admin=True)
    for email in (ANN, BOB):
        theirs = [
            s for s in sent
            if _logged(s) and (email in (s.sender, *s.to) or s.box == email.split("@")[0])
        ]  # fmt: skip
        expected: Counter[tuple[str, str]] = Counter()
        for s in theirs:
            monday = (START + timedelta(weeks=s.day // 7)).isoformat()
            expected[monday, "sent" if s.sender in (ANN, BOB) else "received"] += 1
        with any_app.sessions() as session:
            rows = activity_report(
                session, viewer=admin, by="week", start=START, end=END, user_id=users[email]
            ).rows
        assert [(r["sent"], r["received"]) for r in rows] == [
            (expected[str(r["week"]), "sent"], expected[str(r["week"]), "received"]) for r in rows
        ]
        assert sum(int(str(r["total"])) for r in rows) == len(theirs) > 0

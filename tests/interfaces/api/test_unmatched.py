"""`GET /api/v1/unmatched` (issue 13, item 3): the groups and counts equal an independent
count made from the raw messages with Python's email package, pages are newest first and
walk the whole list, strict privacy counts only what the viewer may see, and nothing of
another company shows."""

from __future__ import annotations

import random
from datetime import UTC
from email import message_from_bytes, policy
from email.utils import getaddresses, parsedate_to_datetime

from fastapi.testclient import TestClient

from mailroom.app import App
from mailroom.crm.retention import set_privacy
from mailroom.db.engine import transaction
from mailroom_testing.builders import build_message
from tests.conftest_web import Tenant
from tests.helpers.more_mail import deliver

STRANGERS = [
    "Ann Prospect <ann@prospect.example>",
    "bob@prospect.example",
    "Cy <cy@sub.newco.example>",
    "dee@gmail.com",
    "Eve <eve@other.example>",
]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def raw_mail(tenant: Tenant, count: int, seed: int) -> list[bytes]:
    """Mail between strangers, known people (Jo, the client's domain) and the company."""
    rng = random.Random(seed)
    domain = tenant.admin.partition("@")[2]
    known = [f"jo@client-{domain.partition('.')[0]}.example", f"pat@client-{domain}"]
    mail = []
    for n in range(count):
        sender = rng.choice([*STRANGERS, *STRANGERS, known[0]])
        cc = rng.sample([*STRANGERS, known[1], tenant.member], k=rng.randint(0, 2))
        mail.append(
            build_message(
                sender=sender,
                to=tenant.admin,
                cc=", ".join(cc) or None,
                subject=f"Mail {n}",
                minutes=100 + rng.randint(0, 5000),
            )
        )
    return mail


def independent_groups(
    raw: list[bytes], tenant: Tenant, *, group: str, only_with: str | None = None
) -> dict[str, tuple[int, str]]:
    """key → (messages, last date) computed from the raw bytes alone: a message is linked
    when a participant is Jo or at the client's domain (the seeded contact and account);
    internal addresses (the company's domain) and, by domain, free mail are left out."""
    own = tenant.admin.partition("@")[2]
    client = "client-" + own
    found: dict[str, tuple[int, str]] = {}
    for data in raw:
        msg = message_from_bytes(data, policy=policy.default)
        people = {
            a.lower()
            for _n, a in getaddresses([str(msg[h]) for h in ("From", "To", "Cc") if msg[h]])
        }
        if only_with is not None and only_with not in people:
            continue
        if any(p.endswith("@" + client) or p.startswith("jo@") for p in people):
            continue
        when = parsedate_to_datetime(str(msg["Date"])).astimezone(UTC).isoformat()
        keys = set()
        for person in people:
            domain = person.partition("@")[2]
            if domain == own:
                continue
            if group == "person":
                keys.add(person)
            elif domain != "gmail.com":
                keys.add(domain)
        for key in keys:
            count, last = found.get(key, (0, ""))
            found[key] = (count + 1, max(last, when))
    return found


def walk(web: TestClient, token: str, group: str) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    cursor = None
    for _ in range(50):
        url = f"/api/v1/unmatched?group={group}&limit=2" + (f"&cursor={cursor}" if cursor else "")
        answer = web.get(url, headers=auth(token))
        assert answer.status_code == 200, answer.text
        page = answer.json()
        items += page["items"]
        cursor = page["next"]
        if cursor is None:
            return items
    raise AssertionError("the pages never ended")


def as_groups(items: list[dict[str, object]], key: str) -> dict[str, tuple[int, str]]:
    return {str(i[key]): (int(str(i["messages"])), str(i["last_date"])) for i in items}


def test_unmatched_people_and_domains_equal_an_independent_count_newest_first(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, beta = two_tenants
    raw = raw_mail(alpha, 40, seed=13)
    deliver(sqlite_app, alpha.mailbox_id, *raw)
    deliver(sqlite_app, beta.mailbox_id, *raw_mail(beta, 10, seed=7))
    people = walk(web, alpha.member_token, "person")
    expected = independent_groups(raw, alpha, group="person")
    assert expected and as_groups(people, "address") == expected
    order = [(i["last_date"], i["address"]) for i in people]
    assert order == sorted(order, key=lambda k: (-_stamp(str(k[0])), k[1]))
    names = {i["address"]: i["name"] for i in people}
    assert names.get("ann@prospect.example") == "Ann Prospect"
    domains = walk(web, alpha.member_token, "domain")
    assert as_groups(domains, "domain") == independent_groups(raw, alpha, group="domain")
    assert "gmail.com" not in as_groups(domains, "domain")
    assert all("beta" not in str(i["address"]) for i in people)


def test_in_strict_mode_a_member_counts_only_mail_they_took_part_in(
    web: TestClient, sqlite_app: App, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    raw = raw_mail(alpha, 30, seed=5)
    deliver(sqlite_app, alpha.mailbox_id, *raw)
    with transaction(sqlite_app.sessions) as session:
        set_privacy(session, company_id=alpha.company_id, visibility="strict")
    seen = as_groups(walk(web, alpha.member_token, "person"), "address")
    expected = independent_groups(raw, alpha, group="person", only_with=alpha.member)
    assert seen == expected
    everything = as_groups(walk(web, alpha.admin_token, "person"), "address")
    assert everything == independent_groups(raw, alpha, group="person")
    assert sum(n for n, _ in seen.values()) < sum(n for n, _ in everything.values())


def test_a_bad_cursor_or_group_answers_422(
    web: TestClient, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    headers = auth(alpha.admin_token)
    assert web.get("/api/v1/unmatched?group=company", headers=headers).status_code == 422
    bad = web.get("/api/v1/unmatched?group=person&cursor=nonsense", headers=headers)
    assert bad.status_code == 422 and "cursor" in bad.json()["message"]


def _stamp(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()

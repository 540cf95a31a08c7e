"""A batch's planned links are what the matching rules say, message by message, whatever
the mix of known, shared, domain-only, free-mail and repeated addresses in the batch
(plan_links builds each address's links once a batch, by domain for the unknown ones)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailroom.app import App
from mailroom.crm.companies import get_company
from mailroom.crm.records import EmailField, add_record
from mailroom.db.engine import transaction
from mailroom.db.models import Record
from mailroom.matching.linker import MatchInput, PlannedLink, plan_links
from tests.helpers.matching_kit import setup

ADDRESSES = [
    "ann@client.example",  # a contact with an account, and a lead, hold it
    "bob@other.example",  # a contact with an open opportunity, no account
    "cy@third.example",  # a lead only
    "x@sub.dom.example",  # unknown: its parent domain's account
    "y@dom.example",  # unknown: the same account, by its own domain
    "w@client.example",  # unknown: the account of client.example
    "z@gmail.com",  # free mail: never a domain link
    "nobody@nowhere.example",  # nothing at all
]
_POOLS: dict[int, tuple[int, dict[str, list[PlannedLink]], dict[str, list[PlannedLink]]]] = {}
MESSAGES = st.lists(
    st.lists(st.sampled_from(ADDRESSES), min_size=1, max_size=5), min_size=1, max_size=40
)


def _pool(app: App) -> tuple[int, dict[str, list[PlannedLink]], dict[str, list[PlannedLink]]]:
    """(company id, address → its links by the records holding it, address → its links
    by domain), written out by hand from the matching rules."""
    ids = setup(app)
    with transaction(app.sessions) as session:
        company = get_company(session, "Acme")

        def add(kind: str, name: str, *emails: str, **extra: Any) -> Record:
            fields = [EmailField("main", e) for e in emails]
            made = add_record(
                session, company=company, record_type=kind, name=name, emails=fields, **extra
            )
            session.flush()
            return made

        client_record = add("account", "Client", domains=["client.example"])
        bob_record = add("contact", "Bob", "bob@other.example")
        client, bob = client_record.id, bob_record.id
        dom = add("account", "Dom", domains=["dom.example"]).id
        ann = add("contact", "Ann", "ann@client.example", account=client_record).id
        lead = add("lead", "Ann lead", "ann@client.example").id
        deal = add("opportunity", "Deal", account=bob_record).id
        cy = add("lead", "Cy", "cy@third.example").id
    held = {
        "ann@client.example": [
            PlannedLink(ann, "address:main", "contact"),
            PlannedLink(client, "address:contact", "account"),
            PlannedLink(lead, "address:main", "lead"),
        ],
        "bob@other.example": [
            PlannedLink(bob, "address:main", "contact"),
            PlannedLink(deal, "address:contact", "opportunity"),
        ],
        "cy@third.example": [PlannedLink(cy, "address:main", "lead")],
    }
    by_domain = {
        "x@sub.dom.example": [PlannedLink(dom, "domain", "account")],
        "y@dom.example": [PlannedLink(dom, "domain", "account")],
        "w@client.example": [PlannedLink(client, "domain", "account")],
    }
    return ids.company_id, held, by_domain


def _expected(
    participants: list[str],
    held: dict[str, list[PlannedLink]],
    by_domain: dict[str, list[PlannedLink]],
) -> list[PlannedLink]:
    """Addresses' links in participant order, then domains', each record once (first)."""
    links = [x for a in participants for x in held.get(a, [])]
    links += [x for a in participants for x in by_domain.get(a, [])]
    seen: set[int] = set()
    kept = []
    for link in links:
        if link.record_id not in seen:
            seen.add(link.record_id)
            kept.append(link)
    return kept


@settings(
    deadline=None, max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=MESSAGES)
def test_a_batch_plans_each_message_as_the_rules_say(
    sqlite_app: App, batch: list[list[str]]
) -> None:
    if id(sqlite_app) not in _POOLS:  # the records once per test, not per example
        _POOLS.clear()
        _POOLS[id(sqlite_app)] = _pool(sqlite_app)
    company_id, held, by_domain = _POOLS[id(sqlite_app)]
    inputs = [
        MatchInput(
            message_id=n + 1,
            identity=f"m{n}@batch.example",
            participants=tuple(("to", a) for a in addresses),
            new_conversation=True,
        )
        for n, addresses in enumerate(batch)
    ]
    with sqlite_app.sessions() as session:
        plans = plan_links(session, company_id=company_id, inputs=inputs)
    for item, addresses in zip(inputs, batch, strict=True):
        assert plans[item.message_id] == _expected(addresses, held, by_domain)

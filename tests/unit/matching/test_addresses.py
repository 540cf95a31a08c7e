"""Property tests: address and domain normalisation as matching, blocklist and rules use it.

Whatever case or Unicode spelling a record, a blocklist entry or a rule uses, and however
a header spells the same address, they must compare equal; a domain entry must cover
exactly the domain and its subdomains, never a look-alike that merely ends with its text.
"""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailroom.app import App
from mailroom.crm.companies import get_company
from mailroom.crm.records import EmailField, add_record
from mailroom.db.engine import transaction
from mailroom.mail.addresses import normalise
from mailroom.matching.blocklist import Blocklist, clean_entry
from mailroom.matching.index import domain_candidates, is_free_mail, registrable_domain
from mailroom.matching.rules import AddressPattern
from tests.helpers.matching_kit import ingest, links_of, mail, setup

LABEL = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True)
UNICODE_LABEL = st.sampled_from(["bücher", "münchen", "ñandú", "straße", "zürich", "αβγ"])
LOCAL = st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,10}[a-z0-9]", fullmatch=True).filter(
    lambda s: ".." not in s
)
TLD = st.sampled_from(["com", "co.uk", "example", "de", "com.au", "org"])


@st.composite
def domains(draw: st.DrawFn) -> str:
    labels = draw(st.lists(st.one_of(LABEL, UNICODE_LABEL), min_size=1, max_size=3))
    return ".".join([*labels, draw(TLD)])


def shout(text: str, every: int = 2) -> str:
    """Upper-case some letters; ß and the like stay (their upper case is another name)."""
    return "".join(
        c.upper() if i % every == every - 1 and c.upper().lower() == c else c
        for i, c in enumerate(text)
    )


@given(LOCAL, domains())
def test_case_and_unicode_spellings_normalise_to_one_address(local: str, domain: str) -> None:
    plain = normalise(f"{local}@{domain}")
    assert plain is not None and plain.isascii() and plain == plain.lower()
    assert normalise(f"{shout(local)}@{shout(domain, 1)}") == plain
    assert normalise(f"  <{local}@{domain}.>  ") == plain
    assert normalise(plain) == plain


@given(LOCAL, domains(), st.lists(LABEL, max_size=2))
def test_a_domain_entry_covers_the_domain_and_subdomains_only(
    local: str, domain: str, subs: list[str]
) -> None:
    entry = clean_entry(f"@{shout(domain, 1)}")
    blocklist = Blocklist(domains=frozenset([entry[1:]]))
    inside = normalise(f"{local}@{'.'.join([*subs, domain])}")
    lookalike = normalise(f"{local}@evil{domain.replace('.', '-', 0)}")
    assert inside is not None and lookalike is not None
    assert blocklist.match(inside) == entry
    assert AddressPattern.parse(entry, "from").matches(inside)
    if not lookalike.endswith("." + entry[1:]) and lookalike.rpartition("@")[2] != entry[1:]:
        assert blocklist.match(lookalike) is None
        assert not AddressPattern.parse(entry, "from").matches(lookalike)


@given(st.lists(LABEL, max_size=3), domains())
def test_domain_candidates_walk_up_to_the_registrable_domain_only(
    subs: list[str], domain: str
) -> None:
    full = normalise(f"x@{'.'.join([*subs, domain])}")
    assert full is not None
    host = full.rpartition("@")[2]
    found = domain_candidates(host)
    if is_free_mail(host):  # gmx.de, web.de, mail.com, … (and their subdomains)
        assert found == []
        return
    assert found[0] == host
    assert found[-1] == registrable_domain(host)
    assert all(host == c or host.endswith("." + c) for c in found)
    assert all("." in c for c in found)  # never a bare TLD


_unique = itertools.count()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(LOCAL, domains())
def test_a_record_matches_mail_however_either_side_spells_the_address(
    sqlite_app: App, local: str, domain: str
) -> None:
    if not hasattr(sqlite_app, "_acme"):
        setup(sqlite_app)
        sqlite_app._acme = True  # type: ignore[attr-defined]
    n = next(_unique)
    stored = f"{shout(local)}{n}@{shout(domain, 1)}"
    written = f"{local}{n}@{domain}"
    with transaction(sqlite_app.sessions) as session:
        record = add_record(
            session,
            company=get_company(session, "Acme"),
            record_type="contact",
            name="x",
            emails=[EmailField("main", stored)],
        )
        ref = record.ref
    with sqlite_app.sessions() as session:
        from sqlalchemy import select

        from mailroom.db.models import Mailbox

        box = session.scalar(select(Mailbox.id).order_by(Mailbox.id))
        assert box is not None
    ingest(sqlite_app, box, mail(sender=written, message_id=f"prop{n}@x"))
    assert links_of(sqlite_app, f"prop{n}@x").get(ref) == "address:main"

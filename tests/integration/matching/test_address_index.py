"""The in-memory address index follows every change to records, addresses and domains —
committed by this process, by another process, by a bulk statement, or still uncommitted
in the caller's own transaction — on SQLite and on PostgreSQL, asked through `view` and
through `checking` (matching's way: on PostgreSQL the version check is sent ahead and the
lookups made meanwhile stand only when its answer says nothing changed)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from mailroom.app import App, open_app
from mailroom.crm.companies import add_company
from mailroom.crm.records import EmailField, add_record
from mailroom.db import ask_ahead
from mailroom.db.engine import transaction
from mailroom.db.matching_models import RecordIndexChange
from mailroom.db.models import Company, Record, RecordDomain, RecordEmail
from mailroom.matching import address_index, index_log, index_reads
from mailroom.matching.address_table import AddressTable


class _Ahead:
    """An index view whose every lookup goes through `address_index.checking` as matching
    asks it: made in the guess, then again if the check's answer says so."""

    def __init__(self, session: Session, company_id: int) -> None:
        self.session, self.company_id = session, company_id
        if session.get_bind().dialect.name == "postgresql":
            session.execute(select(1))  # a transaction open: the check is sent ahead

    def _ask(self, name: str, *args: Any) -> Any:
        with address_index.checking(self.session, company_id=self.company_id) as check:
            found = getattr(check.guess, name)(*args)
            known = check.view()
            return found if known is check.guess else getattr(known, name)(*args)

    def by_address(self, addresses: list[str]) -> Any:
        return self._ask("by_address", addresses)

    def by_domain(self, domains: list[str]) -> Any:
        return self._ask("by_domain", domains)

    def open_opportunities(self, parents: list[int]) -> Any:
        return self._ask("open_opportunities", parents)


VIEWS: dict[str, Any] = {"view": address_index.view, "ahead": _Ahead}
view_of: Any = address_index.view


@pytest.fixture(autouse=True, params=sorted(VIEWS))
def _lookups(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test twice: the index asked by `view`, and by `checking`."""
    monkeypatch.setattr(f"{__name__}.view_of", VIEWS[request.param])


def index_view(session: Session, company_id: int) -> Any:
    if view_of is _Ahead:
        return _Ahead(session, company_id)
    return address_index.view(session, company_id=company_id)


def seen(app: App, address: str) -> list[tuple[int, str, str]]:
    with app.sessions() as session:
        view = index_view(session, 1)
        return [(h.record_id, h.type, h.field) for h in view.by_address([address]).get(address, [])]


def accounts_of(app: App, domain: str) -> list[int]:
    with app.sessions() as session:
        return list(index_view(session, 1).by_domain([domain]).get(domain, []))


def _with_acme(app: App) -> App:
    with transaction(app.sessions) as session:
        company = add_company(session, name="Acme", domains=["acme.example"])
        add_record(
            session,
            company=company,
            record_type="contact",
            name="Jo",
            emails=[EmailField("main", "jo@client.example")],
        )
    return app


@pytest.fixture
def acme(any_app: App) -> App:
    return _with_acme(any_app)


@pytest.fixture
def pg_acme(pg_app: App) -> App:
    """PostgreSQL only: SQLite's writers take turns, so its change ids commit in order."""
    return _with_acme(pg_app)


def _add_address(session: Session, address: str) -> None:
    session.add(RecordEmail(record_id=1, company_id=1, field="other", address=address))
    session.flush()


def test_records_added_changed_and_removed_after_the_first_lookup_are_seen(acme: App) -> None:
    assert seen(acme, "jo@client.example") == [(1, "contact", "main")]
    with transaction(acme.sessions) as session:
        company = session.get(Company, 1)
        assert company is not None
        add_record(
            session,
            company=company,
            record_type="account",
            name="Client Ltd",
            emails=[EmailField("billing", "jo@client.example")],
            domains=["client.example"],
        )
    assert seen(acme, "jo@client.example") == [(1, "contact", "main"), (2, "account", "billing")]
    assert accounts_of(acme, "client.example") == [2]
    with transaction(acme.sessions) as session:
        session.execute(update(Record).where(Record.id == 2).values(type="lead"))
    assert seen(acme, "jo@client.example")[1] == (2, "lead", "billing")
    assert accounts_of(acme, "client.example") == [], "only accounts match by domain"
    with transaction(acme.sessions) as session:
        session.execute(
            update(RecordEmail)
            .where(RecordEmail.record_id == 1)
            .values(address="jo@new-client.example")
        )
    assert seen(acme, "jo@client.example") == [(2, "lead", "billing")]
    assert seen(acme, "jo@new-client.example") == [(1, "contact", "main")]
    with transaction(acme.sessions) as session:
        session.delete(session.get(Record, 2))
    assert seen(acme, "jo@client.example") == []


def test_a_bulk_insert_and_another_process_are_seen(acme: App) -> None:
    assert seen(acme, "bulk7@client.example") == []
    other = open_app(acme.settings)  # a second process: its own engine and index
    try:
        assert seen(other, "jo@client.example") == [(1, "contact", "main")]
        with transaction(other.sessions) as session:
            record = Record(company_id=1, type="lead", name="Bulk")
            session.add(record)
            session.flush()
            session.execute(
                insert(RecordEmail),
                [
                    {"record_id": record.id, "company_id": 1, "field": "main", "address": a}
                    for a in (f"bulk{i}@client.example" for i in range(10))
                ],
            )
            session.execute(
                insert(RecordDomain), [{"record_id": 1, "company_id": 1, "domain": "x.example"}]
            )
        assert seen(other, "bulk7@client.example") == [(2, "lead", "main")]
    finally:
        other.close()
    assert seen(acme, "bulk7@client.example") == [(2, "lead", "main")]


def test_uncommitted_changes_are_seen_by_their_transaction_only_and_vanish_on_rollback(
    acme: App,
) -> None:
    assert seen(acme, "new@client.example") == []
    with acme.sessions() as session:
        session.add(
            RecordEmail(record_id=1, company_id=1, field="other", address="new@client.example")
        )
        session.execute(delete(RecordEmail).where(RecordEmail.address == "jo@client.example"))
        session.flush()
        view = index_view(session, 1)
        assert [
            h.record_id for h in view.by_address(["new@client.example"])["new@client.example"]
        ] == [1]
        assert view.by_address(["jo@client.example"]) == {}
        session.rollback()
    assert seen(acme, "new@client.example") == []
    assert seen(acme, "jo@client.example") == [(1, "contact", "main")]


def test_more_changes_than_the_delta_limit_rebuild_the_index(
    acme: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert seen(acme, "jo@client.example") == [(1, "contact", "main")]
    monkeypatch.setattr(index_reads, "DELTA_LIMIT", 3)
    with transaction(acme.sessions) as session:
        session.execute(
            insert(RecordEmail),
            [
                {"record_id": 1, "company_id": 1, "field": "old", "address": f"p{i}@client.example"}
                for i in range(8)
            ],
        )
        session.flush()
        own = index_view(session, 1)
        assert sorted(own.by_address([f"p{i}@client.example" for i in range(8)])) == sorted(
            f"p{i}@client.example" for i in range(8)
        )
    assert seen(acme, "p5@client.example") == [(1, "contact", "old")]
    assert seen(acme, "jo@client.example") == [(1, "contact", "main")]


def test_opportunities_opened_closed_and_moved_are_seen(acme: App) -> None:
    def open_for(parent: int) -> list[int]:
        with acme.sessions() as session:
            view = index_view(session, 1)
            return [o.id for o in view.open_opportunities([parent]).get(parent, [])]

    assert open_for(1) == []
    with transaction(acme.sessions) as session:
        company = session.get(Company, 1)
        contact = session.get(Record, 1)
        assert company is not None and contact is not None
        add_record(
            session, company=company, record_type="opportunity", name="Deal", account=contact
        )
    assert open_for(1) == [2]
    with transaction(acme.sessions) as session:
        session.execute(update(Record).where(Record.id == 2).values(fields={"stage": "Closed Won"}))
    assert open_for(1) == []
    with transaction(acme.sessions) as session:
        session.execute(update(Record).where(Record.id == 2).values(fields={"stage": "proposal"}))
    assert open_for(1) == [2]
    with transaction(acme.sessions) as session:
        session.delete(session.get(Record, 2))
    assert open_for(1) == []


def test_a_process_behind_the_pruned_log_rebuilds_and_one_ahead_of_it_does_not(
    acme: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds: list[int] = []

    def counted(rows: object) -> AddressTable:
        table = AddressTable(rows)  # type: ignore[arg-type]
        builds.append(len(table))
        return table

    monkeypatch.setattr(address_index, "AddressTable", counted)
    assert seen(acme, "jo@client.example") == [(1, "contact", "main")]  # built here
    other = open_app(acme.settings)  # a second process, which makes the changes
    try:
        with transaction(other.sessions) as session:
            session.execute(
                update(RecordEmail)
                .where(RecordEmail.record_id == 1)
                .values(address="jo@moved.example")
            )
            session.execute(
                insert(RecordDomain), [{"record_id": 1, "company_id": 1, "domain": "x.example"}]
            )
            session.execute(
                insert(RecordEmail),
                [{"record_id": 1, "company_id": 1, "field": "other", "address": "jo2@x.example"}],
            )
        assert seen(other, "jo@moved.example") == [(1, "contact", "main")]  # up to date
        builds.clear()
        with transaction(other.sessions) as session:  # all but the newest change
            deleted = index_log.prune(session, company_id=1, keep=1)
        assert deleted > 0
        with other.sessions() as session:
            kinds = list(session.scalars(select(RecordIndexChange.kind).order_by("id")))
            assert kinds == ["a", index_log.PRUNED]
        # `other` applied every pruned change: it answers from its index, no rebuild.
        assert seen(other, "jo2@x.example") == [(1, "contact", "other")]
        assert builds == []
        # `acme` is behind the pruned rows: the rows left cannot say what it missed (the
        # address moved away from jo@client.example), so it rebuilds and answers right.
        assert seen(acme, "jo@client.example") == []
        assert builds == [2]
        assert seen(acme, "jo@moved.example") == [(1, "contact", "main")]
        assert seen(acme, "jo2@x.example") == [(1, "contact", "other")]
        with transaction(other.sessions) as session:  # a second prune: still one marker
            index_log.prune(session, company_id=1, keep=0)
            index_log.prune(session, company_id=1, keep=0)
            assert session.scalar(select(func.count()).select_from(RecordIndexChange)) == 1
    finally:
        other.close()


def test_a_change_committed_after_a_later_one_is_still_seen(pg_acme: App) -> None:
    assert seen(pg_acme, "jo@client.example") == [(1, "contact", "main")]
    slow = pg_acme.sessions()
    try:
        _add_address(slow, "slow@client.example")  # draws the lower change id
        with transaction(pg_acme.sessions) as session:
            _add_address(session, "fast@client.example")  # a higher id, committed first
        assert seen(pg_acme, "fast@client.example") == [(1, "contact", "other")]
        slow.commit()  # below the id the index has applied
    finally:
        slow.close()
    assert seen(pg_acme, "slow@client.example") == [(1, "contact", "other")]
    with pg_acme.sessions() as session:  # and nothing is read again once it is applied
        index = address_index._index_of(pg_acme.engine, 1)
        assert index.running == address_index._position(session.connection(), 1).running


def test_the_callers_own_change_below_the_shared_version_is_seen_in_its_transaction(
    pg_acme: App,
) -> None:
    assert seen(pg_acme, "jo@client.example") == [(1, "contact", "main")]
    with pg_acme.sessions() as mine:
        _add_address(mine, "mine@client.example")  # the lower id, not committed
        with transaction(pg_acme.sessions) as session:
            _add_address(session, "theirs@client.example")
        view = index_view(mine, 1)  # the shared index moves past mine
        found = view.by_address(["mine@client.example", "theirs@client.example"])
        assert sorted(found) == ["mine@client.example", "theirs@client.example"]
        mine.rollback()
    assert seen(pg_acme, "mine@client.example") == []


def test_a_late_commit_whose_rows_were_pruned_before_they_were_read_rebuilds(
    pg_acme: App,
) -> None:
    assert seen(pg_acme, "jo@client.example") == [(1, "contact", "main")]
    slow = pg_acme.sessions()
    try:
        _add_address(slow, "slow@client.example")
        with transaction(pg_acme.sessions) as session:
            _add_address(session, "fast@client.example")
        assert seen(pg_acme, "fast@client.example") == [(1, "contact", "other")]
        slow.commit()
    finally:
        slow.close()
    with transaction(pg_acme.sessions) as session:  # prunes the late rows before any read
        assert index_log.prune(session, company_id=1, keep=0) > 0
    assert seen(pg_acme, "slow@client.example") == [(1, "contact", "other")]


def test_a_guess_made_before_the_index_moved_is_looked_up_again(pg_acme: App) -> None:
    assert seen(pg_acme, "jo@client.example") == [(1, "contact", "main")]
    with pg_acme.sessions() as session:
        session.execute(select(1))
        with address_index.checking(session, company_id=1) as check:
            assert check.guess.by_address(["new@client.example"]) == {}
            with transaction(pg_acme.sessions) as other:  # committed, then applied by
                _add_address(other, "new@client.example")  # this process meanwhile
            assert seen(pg_acme, "new@client.example") == [(1, "contact", "other")]
            known = check.view()
        assert known is not check.guess
        assert list(known.by_address(["new@client.example"])) == ["new@client.example"]


def test_a_guess_stands_when_nothing_changed_and_the_connection_is_usable_after(
    pg_acme: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[object] = []
    ask = ask_ahead.ask

    def counted(*args: Any) -> Any:
        sent.append(ask(*args))
        return sent[-1]

    assert seen(pg_acme, "jo@client.example") == [(1, "contact", "main")]
    monkeypatch.setattr(ask_ahead, "ask", counted)
    with pg_acme.sessions() as session:
        session.execute(select(1))
        with address_index.checking(session, company_id=1) as check:
            assert list(check.guess.by_address(["jo@client.example"])) == ["jo@client.example"]
            assert check.view() is check.guess
        assert session.scalar(select(func.count()).select_from(RecordEmail)) == 1
    assert len(sent) == 1 and sent[0] is not None, "the check was sent ahead"


def test_an_error_before_the_answer_is_read_leaves_the_connection_usable(pg_acme: App) -> None:
    assert seen(pg_acme, "jo@client.example") == [(1, "contact", "main")]
    with pg_acme.sessions() as session:
        session.execute(select(1))
        with pytest.raises(ZeroDivisionError), address_index.checking(session, company_id=1):
            _ = 1 / 0
        assert session.scalar(select(func.count()).select_from(RecordEmail)) == 1

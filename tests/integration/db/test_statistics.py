"""ANALYZE from the syncing process (db/statistics.py): when the tables a sync grows have
doubled, on PostgreSQL only, and never for a small addition to a large table."""

from __future__ import annotations

from sqlalchemy import text

from mailroom.app import App
from mailroom.db.statistics import GrowthAnalyzer
from tests.helpers.matching_kit import ingest, mail, setup


def planner_rows(app: App) -> float:
    with app.sessions() as session:
        found = session.scalar(text("SELECT reltuples FROM pg_class WHERE relname = 'messages'"))
    return float(found or 0)


def store(app: App, box: int, start: int, count: int) -> int:
    mails = [mail(message_id=f"m{start + n}@x", minutes=start + n) for n in range(count)]
    return ingest(app, box, *mails).messages


def test_the_grown_tables_are_analysed_when_they_have_doubled(pg_app: App) -> None:
    ids = setup(pg_app)
    analyzer = GrowthAnalyzer(pg_app.sessions, dialect="postgresql", min_rows=10)
    analyzer.added(store(pg_app, ids.ann_box, 0, 6))
    assert analyzer.runs == 0  # below the first threshold: the planner still guesses
    analyzer.added(store(pg_app, ids.ann_box, 6, 6))
    assert analyzer.runs == 1
    assert planner_rows(pg_app) == 12
    analyzer.added(store(pg_app, ids.ann_box, 12, 6))
    assert analyzer.runs == 1  # 18 rows: not yet twice the 12 it analysed at
    analyzer.added(store(pg_app, ids.ann_box, 18, 6))
    assert analyzer.runs == 2
    assert planner_rows(pg_app) == 24


def test_a_few_new_messages_in_a_large_table_analyse_nothing(pg_app: App) -> None:
    ids = setup(pg_app)
    store(pg_app, ids.ann_box, 0, 30)
    with pg_app.engine.begin() as conn:
        conn.execute(text("ANALYZE messages"))
    analyzer = GrowthAnalyzer(pg_app.sessions, dialect="postgresql", min_rows=10)
    analyzer.added(store(pg_app, ids.ann_box, 30, 12))
    assert analyzer.runs == 0  # 12 new against 30 known: not doubled


def test_sqlite_is_never_analysed(sqlite_app: App) -> None:
    ids = setup(sqlite_app)
    analyzer = GrowthAnalyzer(sqlite_app.sessions, dialect="sqlite", min_rows=1)
    analyzer.added(store(sqlite_app, ids.ann_box, 0, 3))
    assert analyzer.runs == 0


def test_tables_locked_by_another_analyse_are_skipped_until_the_next_doubling(
    pg_app: App,
) -> None:
    ids = setup(pg_app)
    analyzer = GrowthAnalyzer(pg_app.sessions, dialect="postgresql", min_rows=10)
    with pg_app.engine.connect() as other:
        other.execute(text("LOCK TABLE messages IN SHARE UPDATE EXCLUSIVE MODE"))  # as ANALYZE
        analyzer.added(store(pg_app, ids.ann_box, 0, 12))
        assert analyzer.runs == 0  # gave up after the lock timeout, the sync went on
        analyzer.added(store(pg_app, ids.ann_box, 12, 2))
        assert analyzer.runs == 0  # not tried again at every batch
        other.rollback()
    analyzer.added(store(pg_app, ids.ann_box, 14, 12))
    assert analyzer.runs == 1

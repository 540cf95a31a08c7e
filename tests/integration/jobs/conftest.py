"""Fixtures of the worker tests: the PostgreSQL app with Procrastinate's tables emptied,
and a pool of `mailroom worker` processes (tests/integration/jobs/test_workers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from mailroom.app import App
from tests.integration.jobs.test_workers import Workers


@pytest.fixture
def queue_app(pg_app: App) -> App:
    """The PostgreSQL app with Procrastinate's tables emptied (pg_app truncates only ours)."""
    with pg_app.engine.begin() as conn:
        conn.execute(
            text(
                "TRUNCATE procrastinate_jobs, procrastinate_events, "
                "procrastinate_periodic_defers, procrastinate_workers RESTART IDENTITY CASCADE"
            )
        )
    return pg_app


@pytest.fixture
def workers(queue_app: App, tmp_path: Path) -> Iterator[Workers]:
    """`mailroom worker` processes on `queue_app`'s database, stopped after the test."""
    pool = Workers(queue_app, tmp_path)
    yield pool
    pool.stop_all()

"""The workers' intervals from the environment and the chores' schedules."""

from __future__ import annotations

import pytest
from croniter import croniter

from mailroom.app import App
from mailroom.errors import ConfigError
from mailroom.jobs.chores import CHORES, chore, cron_every
from mailroom.jobs.timing import load_timings
from mailroom.periodic import Periodic


def test_the_default_timings_retry_a_dead_workers_job_within_a_minute(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HEARTBEAT", "STALLED_AFTER"):
        monkeypatch.delenv(f"MAILROOM_WORKER_{name}", raising=False)
    monkeypatch.delenv("MAILROOM_JOBS_TICK", raising=False)
    timings = load_timings()
    assert timings.stalled_after + timings.tick < 60
    assert timings.stalled_after >= 2 * timings.heartbeat


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("MAILROOM_JOBS_TICK", "0", "MAILROOM_JOBS_TICK must be"),
        ("MAILROOM_WORKER_HEARTBEAT", "soon", "MAILROOM_WORKER_HEARTBEAT must be"),
        ("MAILROOM_WORKER_STALLED_AFTER", "12", "at least twice"),  # heartbeat 10 by default
    ],
)
def test_a_bad_interval_is_a_config_error_that_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=says):
        load_timings()


def test_each_chore_runs_the_serve_periodic_as_often_as_serve_does(sqlite_app: App) -> None:
    assert {c.name for c in CHORES} >= {"outbox", "retention", "conversations"}
    for each in CHORES:
        made = each.make(sqlite_app)  # built, never started: the worker calls tick() once
        assert isinstance(made, Periodic)
        assert croniter.is_valid(each.cron(sqlite_app)), each.name
        if each.every is None:
            assert each.cron(sqlite_app) == cron_every(made.interval)
    assert chore("outbox").cron(sqlite_app) == "*/1 * * * *"  # serve: every 60 s
    assert chore("retention").cron(sqlite_app) == "7 */1 * * *"  # serve: every hour
    assert [cron_every(s) for s in (10, 60, 3600, 86400)] == [
        "* * * * * */10",
        "*/1 * * * *",
        "7 */1 * * *",
        "7 3 * * *",
    ]

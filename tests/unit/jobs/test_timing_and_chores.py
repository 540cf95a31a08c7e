"""The workers' intervals from the environment, the chores' schedules, and how the
IDLE watchers are shared among the workers."""

from __future__ import annotations

import pytest
from croniter import croniter

from mailroom.app import App
from mailroom.errors import ConfigError
from mailroom.jobs.chores import BASE_CHORES, chore, cron_every
from mailroom.jobs.timing import load_timings
from mailroom.jobs.watch import owner_of, share
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


def test_a_worker_sync_keeps_the_engines_batch_sizes_unless_one_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MAILROOM_SYNC_BATCH", raising=False)
    assert load_timings().batch_size is None  # 200, or up to 1,000 through the fetch workers
    monkeypatch.setenv("MAILROOM_SYNC_BATCH", "50")
    assert load_timings().batch_size == 50


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("MAILROOM_JOBS_TICK", "0", "MAILROOM_JOBS_TICK must be"),
        ("MAILROOM_WORKER_HEARTBEAT", "soon", "MAILROOM_WORKER_HEARTBEAT must be"),
        ("MAILROOM_WORKER_STALLED_AFTER", "12", "at least twice"),  # heartbeat 10 by default
        ("MAILROOM_SYNC_BATCH", "0", "MAILROOM_SYNC_BATCH must be"),
    ],
)
def test_a_bad_interval_is_a_config_error_that_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=says):
        load_timings()


def test_each_chore_runs_the_serve_periodic_as_often_as_serve_does(sqlite_app: App) -> None:
    assert {c.name for c in BASE_CHORES} >= {"outbox", "retention", "conversations"}
    for each in BASE_CHORES:
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


def test_every_mailbox_is_watched_by_exactly_one_worker_and_a_death_moves_only_its_own() -> None:
    wanted = {(box, folder): box for box in range(1, 301) for folder in ("INBOX", "Sent")}
    workers = [3, 7, 11]
    shares = {w: share(wanted, workers, w) for w in workers}
    assert sorted(k for s in shares.values() for k in s) == sorted(wanted)  # once each
    assert all(len(s) > 100 for s in shares.values())  # spread, not piled on one
    for key in wanted:  # both folders of a mailbox on one worker
        assert owner_of(key[0], workers) in workers
    after = {w: share(wanted, [3, 11], w) for w in (3, 11)}  # worker 7 died
    for w in (3, 11):
        assert set(shares[w]) <= set(after[w])  # the survivors keep what they watched
    assert set(after[3]) | set(after[11]) == set(wanted)

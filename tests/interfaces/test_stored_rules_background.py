"""A rule run on a large mail store goes to the background: the API answers at once with
`background` set, `/status` reports progress until it is done, the result equals the
preview, and a second run started meanwhile is refused (409) instead of running twice.
The size that counts as large is lowered to 1 message here (INLINE_LIMIT)."""

from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient

from mailroom.services import stored_rules
from tests.conftest_web import Tenant

RULE = {"name": "no-quotes", "action": "ignore", "conditions": {"subject_contains": "quote"}}
URL = "/api/v1/rules/no-quotes/stored"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_large_run_goes_to_the_background_reports_progress_and_is_not_started_twice(
    web: TestClient, two_tenants: tuple[Tenant, Tenant], monkeypatch: pytest.MonkeyPatch
) -> None:
    alpha, _beta = two_tenants
    monkeypatch.setattr(stored_rules, "INLINE_LIMIT", 1)
    assert web.post("/api/v1/rules", json=RULE, headers=bearer(alpha.admin_token)).is_success
    preview = web.get(URL, headers=bearer(alpha.admin_token)).json()["affected"]
    assert preview == 2
    gate = threading.Event()
    real_run = stored_rules._run

    def held_run(*args: object) -> None:  # holds the thread until the second POST is refused
        assert gate.wait(60), "the test never released the background run"
        real_run(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(stored_rules, "_run", held_run)
    started = web.post(URL, headers=bearer(alpha.admin_token))
    assert started.status_code == 202
    assert started.json()["background"] is True and started.json()["state"] == "running"
    again = web.post(URL, headers=bearer(alpha.admin_token))
    assert again.status_code == 409 and "already running" in again.json()["message"]
    gate.set()
    for thread in threading.enumerate():
        if thread.name == "mailroom-rule-no-quotes":
            thread.join(60)
    status = web.get(f"{URL}/status", headers=bearer(alpha.admin_token)).json()
    assert (status["state"], status["affected"], status["scanned"]) == ("done", preview, 3)

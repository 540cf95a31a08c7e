"""On PostgreSQL, "Sync now" from the API queues the mailbox for the workers, and the API's
mailbox list and the admin's mailbox page show it queued and the queue's depth."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from mailroom.app import App
from mailroom.web.app import create_web_app
from tests.conftest_web import seed_tenant, sign_in


@pytest.fixture
def pg_web(pg_app: App, fast_hashing: None) -> Iterator[TestClient]:
    with pg_app.engine.begin() as conn:
        conn.execute(
            text(
                "TRUNCATE procrastinate_jobs, procrastinate_events, "
                "procrastinate_periodic_defers, procrastinate_workers RESTART IDENTITY CASCADE"
            )
        )
    with TestClient(create_web_app(pg_app)) as client:
        yield client


def test_sync_now_on_postgresql_is_queued_and_the_api_and_admin_page_show_it(
    pg_app: App, pg_web: TestClient
) -> None:
    tenant = seed_tenant(pg_app, "Acme")
    auth = {"Authorization": f"Bearer {tenant.admin_token}"}
    before = pg_web.get("/api/v1/mailboxes", headers=auth).json()["items"][0]
    assert before["queued"] is False and before["queue_depth"] == 0
    answer = pg_web.post(f"/api/v1/mailboxes/{tenant.mailbox_id}/sync", headers=auth)
    assert answer.status_code == 202 and answer.json()["status"] == "queued"
    item = pg_web.get("/api/v1/mailboxes", headers=auth).json()["items"][0]
    assert item["id"] == tenant.mailbox_id
    assert item["queued"] is True and item["queue_depth"] == 1
    assert item["status"] != "syncing"  # nobody syncs it yet: serve never does on PostgreSQL
    sign_in(pg_web, tenant.admin)
    page = pg_web.get("/admin/mailboxes").text
    assert "Sync queue: 1 waiting" in page and "queued" in page

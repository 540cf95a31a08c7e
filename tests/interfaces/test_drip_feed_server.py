"""A drip-feeding mail server slows no other company (issue 11, item 10).

Before: connecting a mailbox opened a transaction (on SQLite, `BEGIN IMMEDIATE`: the write
lock) before talking to the server, so a server that dripped one byte every 5 s made
another company's `GET /api/v1/mailboxes` fail with "database is locked" after 30 s.

Here company Alpha's member points three flows at a server that answers LOGIN one byte
every 200 ms, for ever: connecting a new mailbox, testing a stored one, and syncing it
(the background sync of `serve`). While all three are stuck in the login, company Beta's
API and dashboard requests are served by the real web server (uvicorn), each within the
client's ordinary timeout, with no lock error: asserted by outcome (200, and Alpha's
requests provably still waiting), never by a duration. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from mailroom.app import App
from mailroom.db.engine import transaction
from mailroom.db.models import User
from mailroom.mailboxes.store import add_mailbox
from mailroom.security.auth import start_session
from mailroom.web.deps import SESSION_COOKIE
from mailroom_testing.hostile_server import Answer, HostileServer
from tests.conftest_web import Tenant, seed_tenant, serve_app

CLIENT_TIMEOUT = 10.0  # an ordinary HTTP client's patience; SQLite's lock wait is 30 s


def dripping_login() -> Answer:
    """LOGIN answered one byte every 200 ms, until the client or the test hangs up."""

    def answer(tag: bytes, args: bytes) -> Iterator[bytes]:
        while True:
            time.sleep(0.2)
            yield b"*"

    return answer


def call(
    url: str, *, token: str = "", cookie: str = "", body: dict[str, object] | None = None
) -> tuple[int, str]:
    """(status, text) of one request, within CLIENT_TIMEOUT (a timeout raises)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if cookie:
        headers["Cookie"] = f"{SESSION_COOKIE}={cookie}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=CLIENT_TIMEOUT) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as failed:
        return failed.code, failed.read().decode()


def session_cookie(app: App, email: str) -> str:
    with transaction(app.sessions) as session:
        user = session.scalars(select(User).where(User.email == email)).one()
        return start_session(session, user=user).cookie


def hostile_box(app: App, tenant: Tenant, server: HostileServer) -> int:
    with transaction(app.sessions) as session:
        member = session.scalars(select(User).where(User.email == tenant.member)).one()
        box = add_mailbox(
            session,
            app.secrets,
            user=member,
            host=server.host,
            port=server.port,
            password="pw-123",
            security="none",
        )
        return box.id


def test_other_companies_are_served_while_a_server_drips_its_login(
    any_app: App, fast_hashing: None
) -> None:
    alpha = seed_tenant(any_app, "Alpha")
    beta = seed_tenant(any_app, "Beta")
    beta_cookie = session_cookie(any_app, beta.member)
    server = HostileServer()
    server.on("LOGIN", dripping_login())
    box = hostile_box(any_app, alpha, server)
    with serve_app(any_app) as url:
        connect = {
            "host": server.host,
            "port": server.port,
            "security": "none",
            "password": "pw-123456",
        }
        alpha_calls = [
            ("connect", f"{url}/api/v1/mailboxes", connect),
            ("test", f"{url}/api/v1/mailboxes/{box}/test", {}),
            ("sync", f"{url}/api/v1/mailboxes/{box}/sync", {}),
        ]
        answers: dict[str, tuple[int, str] | BaseException] = {}

        def alpha_does(name: str, where: str, body: dict[str, object]) -> None:
            try:
                answers[name] = call(where, token=alpha.member_token, body=body)
            except BaseException as exc:
                answers[name] = exc

        threads = [
            threading.Thread(target=alpha_does, args=call_, daemon=True) for call_ in alpha_calls
        ]
        for thread in threads:
            thread.start()
        # SQLite: `serve` syncs in-process, so the sync logs in too. PostgreSQL: "sync now"
        # only queues a job for the workers (issue 14), and none runs in this test.
        _wait_for_logins(server, 3 if any_app.settings.is_sqlite else 2)
        try:
            for _ in range(5):
                status, text = call(f"{url}/api/v1/mailboxes", token=beta.member_token)
                assert status == 200, text
                assert "locked" not in text
                assert [m["address"] for m in json.loads(text)["items"]] == []
                status, text = call(f"{url}/mailboxes", cookie=beta_cookie)
                assert status == 200 and "My mailboxes" in text and "locked" not in text
                status, text = call(f"{url}/api/v1/mailboxes", token=beta.admin_token)
                assert status == 200 and beta.admin in text and alpha.admin not in text
            # Alpha's connect and test are still stuck in the dripping login: Beta was
            # served meanwhile, not after them.
            assert threads[0].is_alive() and threads[1].is_alive(), answers
        finally:
            server.close()
        for thread in threads:
            thread.join(CLIENT_TIMEOUT * 2)
    assert answers["connect"] != (201, ""), answers


def _wait_for_logins(server: HostileServer, count: int) -> None:
    """Until `count` LOGIN commands reached the dripping server (each flow is stuck)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if sum(1 for line in server.seen if b" LOGIN " in line) >= count:
            return
        time.sleep(0.05)
    pytest.fail(f"only {server.seen!r} reached the hostile server")

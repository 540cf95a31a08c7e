"""The web and the API are no port scanner (issue 11 item 11): without
MAILROOM_ALLOW_PRIVATE_HOSTS=1 a mailbox host that is, or resolves to, a loopback, private
or link-local address is refused with a 422 naming the rule and the variable, before any
connection (a listening trap on loopback accepts nothing); the operator's CLI still
connects anywhere; a server that greets with something else (an SSH banner) is answered
without its words; the tests past a user's limit in a minute get 429.

The suite runs with the variable set (tests/conftest.py); these tests unset it. Nothing
here may connect anywhere but loopback: `loopback_only` makes any other connect fail the
test (so the old code, which connected, fails without sending a packet to 10.0.0.1)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mailroom.app import App
from mailroom.config import ALLOW_PRIVATE_HOSTS_ENV
from mailroom.db.models import Mailbox
from mailroom.services.host_policy import TESTS_PER_MINUTE
from mailroom_testing.dovecot import DovecotServer
from tests.conftest_web import seed_tenant, sign_in
from tests.helpers.mailbox_state import ORIGIN, run_cli

LOOPBACK = ("127.0.0.1", "::1", "localhost")
BANNER = b"SSH-2.0-OpenSSH_9.6\r\n"


def _loopback_only(original: Callable[..., Any]) -> Callable[..., Any]:
    def guarded(sock: socket.socket, address: Any, *args: Any) -> Any:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in LOOPBACK:
            raise AssertionError(f"the test connected to {address[0]}: it must be refused first")
        return original(sock, address, *args)

    return guarded


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _loopback_only(socket.socket.connect))
    monkeypatch.setattr(socket.socket, "connect_ex", _loopback_only(socket.socket.connect_ex))


class Trap:
    """Listening sockets on 127.0.0.1 and ::1 that nobody should connect to."""

    def __init__(self) -> None:
        self.sockets: list[socket.socket] = []
        self.ports: dict[str, int] = {}
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            with contextlib.suppress(OSError):  # a host without IPv6
                sock = socket.socket(family, socket.SOCK_STREAM)
                sock.bind((host, 0))
                sock.listen(16)
                sock.setblocking(False)
                self.sockets.append(sock)
                self.ports[host] = sock.getsockname()[1]

    def port_for(self, host: str) -> int:
        return self.ports.get("::1" if ":" in host else "127.0.0.1", self.ports["127.0.0.1"])

    def accepted(self) -> int:
        count = 0
        for sock in self.sockets:
            with contextlib.suppress(BlockingIOError):
                while True:
                    conn, _ = sock.accept()
                    conn.close()
                    count += 1
        return count

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def trap() -> Iterator[Trap]:
    found = Trap()
    yield found
    found.close()


@pytest.fixture
def strict(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> TestClient:
    """The web client on an app opened without MAILROOM_ALLOW_PRIVATE_HOSTS."""
    monkeypatch.delenv(ALLOW_PRIVATE_HOSTS_ENV)
    client: TestClient = request.getfixturevalue("web")
    app: App = request.getfixturevalue("sqlite_app")
    assert app.settings.allow_private_hosts is False
    return client


REFUSED = ["127.0.0.1", "10.0.0.1", "169.254.1.1", "::1", "localhost", "::ffff:127.0.0.1"]


def _refused_with_the_rule(text: str) -> bool:
    return "Loopback, private, link-local" in text and ALLOW_PRIVATE_HOSTS_ENV in text


def test_test_connection_page_refuses_private_hosts_before_connecting(
    strict: TestClient, sqlite_app: App, trap: Trap
) -> None:
    tenant = seed_tenant(sqlite_app, "Alpha")
    csrf = sign_in(strict, tenant.member)
    for host in REFUSED:
        form = {"csrf_token": csrf, "protocol": "imap", "host": host, "security": "none"}
        form |= {"port": str(trap.port_for(host)), "username": "ann", "password": "pw-123"}
        tested = strict.post("/mailboxes/test", data=form, headers=ORIGIN)
        assert tested.status_code == 422, (host, tested.text)
        assert _refused_with_the_rule(tested.text), tested.text
        connect = strict.post("/mailboxes", data=form, headers=ORIGIN)
        assert connect.status_code == 422 and _refused_with_the_rule(connect.text)
    assert trap.accepted() == 0
    with sqlite_app.sessions() as session:
        assert session.scalars(select(Mailbox.host)).all() == ["imap.test"]  # the seeded one


def test_api_connect_and_smtp_refuse_private_hosts_before_connecting(
    strict: TestClient, sqlite_app: App, trap: Trap
) -> None:
    tenant = seed_tenant(sqlite_app, "Alpha")
    member = {"Authorization": f"Bearer {tenant.member_token}"}
    admin = {"Authorization": f"Bearer {tenant.admin_token}"}  # owns the seeded mailbox
    for host in REFUSED:
        port = trap.port_for(host)
        body = {"host": host, "port": port, "username": "ann", "password": "pw-123"}
        made = strict.post("/api/v1/mailboxes", json={**body, "security": "none"}, headers=member)
        assert made.status_code == 422, (host, made.text)
        assert made.json()["error"] == "host-not-allowed"
        assert _refused_with_the_rule(made.json()["message"] + made.json()["hint"])
        smtp = {"host": host, "port": port, "security": "none", "password": "pw-123"}
        put = strict.put(f"/api/v1/mailboxes/{tenant.mailbox_id}/smtp", json=smtp, headers=admin)
        assert put.status_code == 422, (host, put.text)
        assert _refused_with_the_rule(put.json()["message"] + put.json()["hint"])
    assert trap.accepted() == 0


def test_the_test_past_the_users_limit_in_a_minute_gets_429(
    strict: TestClient, sqlite_app: App
) -> None:
    tenant = seed_tenant(sqlite_app, "Alpha")
    member = {"Authorization": f"Bearer {tenant.member_token}"}
    body = {"host": "10.0.0.1", "port": 993, "username": "ann", "password": "pw-123"}
    for _ in range(TESTS_PER_MINUTE):
        assert strict.post("/api/v1/mailboxes", json=body, headers=member).status_code == 422
    limited = strict.post("/api/v1/mailboxes", json=body, headers=member)
    assert limited.status_code == 429, limited.text
    assert limited.json()["error"] == "rate-limited" and int(limited.headers["Retry-After"]) > 0
    csrf = sign_in(strict, tenant.member)  # the same user in the dashboard: the same count
    form = {"csrf_token": csrf, "host": "10.0.0.1", "port": "993", "security": "ssl"}
    form |= {"username": "ann", "password": "pw-123"}
    assert strict.post("/mailboxes/test", data=form, headers=ORIGIN).status_code == 429
    admin = {"Authorization": f"Bearer {tenant.admin_token}"}  # another user: not limited
    assert strict.post("/api/v1/mailboxes", json=body, headers=admin).status_code == 422


def test_the_operators_cli_adds_a_mailbox_on_loopback_without_the_variable(
    sqlite_app: App,
    dovecot: DovecotServer,
    imap_user: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv(ALLOW_PRIVATE_HOSTS_ENV)
    user, password = imap_user
    company = ("company", "add", "Acme", "--domain", "acme.example")
    assert run_cli(sqlite_app, monkeypatch, *company) == 0
    assert (
        run_cli(sqlite_app, monkeypatch, "user", "add", "ann@acme.example", "--company", "Acme")
        == 0
    )
    add = ("mailbox", "add", "--user", "ann@acme.example", "--host", "127.0.0.1")
    add += ("--port", str(dovecot.imaps_port), "--username", user)
    add += ("--password-stdin", "--allow-self-signed")
    capsys.readouterr()
    assert run_cli(sqlite_app, monkeypatch, *add, stdin=password + "\n") == 0
    assert capsys.readouterr().out.strip().isdigit()


@pytest.fixture
def banner_server() -> Iterator[int]:
    """A loopback server that greets every connection as SSH does; yields its port."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)

    def greet(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.sendall(BANNER)
            conn.settimeout(2)
            conn.recv(1024)  # whatever the client says next, then close

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:  # shut down: the test is over
                return
            threading.Thread(target=greet, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    server.shutdown(socket.SHUT_RDWR)
    server.close()
    thread.join(5)


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_a_failed_greeting_is_answered_without_the_servers_words(
    web: TestClient, sqlite_app: App, banner_server: int, protocol: str
) -> None:
    tenant = seed_tenant(sqlite_app, "Alpha")
    csrf = sign_in(web, tenant.member)
    form = {"csrf_token": csrf, "protocol": protocol, "host": "127.0.0.1", "security": "none"}
    form |= {"port": str(banner_server), "username": "ann", "password": "pw-123"}
    tested = web.post("/mailboxes/test", data=form, headers=ORIGIN)
    assert "Test failed" in tested.text and "127.0.0.1" in tested.text
    connect = web.post("/mailboxes", data=form, headers=ORIGIN)
    api = {"Authorization": f"Bearer {tenant.member_token}"}
    body = {"host": "127.0.0.1", "port": banner_server, "protocol": protocol}
    body |= {"security": "none", "username": "ann", "password": "pw-123"}
    made = web.post("/api/v1/mailboxes", json=body, headers=api)
    assert made.status_code == 502 and "did not answer as" in made.json()["message"]
    admin = {"Authorization": f"Bearer {tenant.admin_token}"}
    smtp = {"host": "127.0.0.1", "port": banner_server, "security": "none", "password": "x-1"}
    put = web.put(f"/api/v1/mailboxes/{tenant.mailbox_id}/smtp", json=smtp, headers=admin)
    assert put.status_code == 502
    for answer in (tested.text, connect.text, made.text, put.text):
        assert "SSH" not in answer and "OpenSSH" not in answer

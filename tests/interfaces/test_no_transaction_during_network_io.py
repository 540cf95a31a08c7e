"""No database transaction is open while a socket call runs (ISSUE11 item 10).

On SQLite every transaction holds the write lock from BEGIN IMMEDIATE on, so one left open
across a login or a fetch blocks every other company's requests for as long as the remote
server takes. `tests.helpers.tx_guard` records any network call made by a thread that holds
an open transaction; each test drives one main mailbox flow against the real Dovecot and
aiosmtpd on SQLite, in this process (CLI, API, background syncs, outbox, retro backfill),
and asserts that none was recorded.
"""

from __future__ import annotations

import json
import smtplib
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mailroom.app import App
from mailroom.crm.companies import add_company, add_user
from mailroom.crm.records import EmailField, add_record
from mailroom.db.engine import transaction
from mailroom.db.models import Company, Mailbox, Message
from mailroom.dropbox.server import start_dropbox_server
from mailroom.dropbox.tokens import drop_address, ensure_token
from mailroom.mailboxes.store import add_mailbox
from mailroom.mailboxes.tokens import connect_with_token
from mailroom.outbox.delivery import process_due
from mailroom.outbox.service import SendRequest, queue_message
from mailroom.sync.engine import sync_mailbox
from mailroom.sync.scheduler import PollScheduler
from mailroom_testing.builders import build_message
from mailroom_testing.dovecot import DovecotServer
from mailroom_testing.oauth_provider import OAuthProvider
from tests.conftest_smtp import SmtpTestServer, make_outbox_env
from tests.conftest_web import seed_tenant, sign_in
from tests.helpers.mailbox_state import ORIGIN, run_cli, wait_for_syncs
from tests.helpers.sync_support import connect_mailbox, seed
from tests.helpers.tx_guard import TxGuard, guarding
from tests.integration.sync.test_oauth_refresh import connect, oauth_mailbox, settings_of


@pytest.fixture
def tx_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[TxGuard]:
    """Records network calls made inside a database transaction, for the whole test."""
    with guarding(monkeypatch) as guard:
        yield guard


def test_the_guard_records_a_connect_inside_a_transaction_of_the_same_thread_only(
    sqlite_app: App, tx_guard: TxGuard
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        address = server.getsockname()

        def dial() -> None:
            socket.create_connection(address).close()

        dial()  # no transaction open: fine
        assert tx_guard.violations == []
        with transaction(sqlite_app.sessions) as session:
            session.scalars(select(Company)).all()  # BEGIN IMMEDIATE
            other = threading.Thread(target=dial)  # another thread holds no transaction
            other.start()
            other.join()
            assert tx_guard.violations == []
            dial()
        assert {v.call for v in tx_guard.violations} >= {"socket.create_connection"}
        assert "dial" in tx_guard.violations[0].stack
        tx_guard.violations.clear()
        dial()  # committed: fine again
    tx_guard.assert_clean()


def test_cli_connect_edit_smtp_test_and_sync_hold_no_transaction_while_talking(
    sqlite_app: App,
    dovecot: DovecotServer,
    imap_user: tuple[str, str],
    smtp: SmtpTestServer,
    monkeypatch: pytest.MonkeyPatch,
    tx_guard: TxGuard,
) -> None:
    user, password = imap_user
    seed(dovecot, user, "INBOX", 3)

    def cli(*args: str, stdin: str = "") -> int:
        return run_cli(sqlite_app, monkeypatch, *args, stdin=stdin)

    assert cli("company", "add", "Acme", "--domain", "acme.example") == 0
    assert cli("user", "add", "ann@acme.example", "--company", "Acme") == 0
    add = ("mailbox", "add", "--user", "ann@acme.example", "--host", dovecot.host)
    add += ("--port", str(dovecot.imaps_port), "--username", user)
    add += ("--password-stdin", "--allow-self-signed")
    assert cli(*add, stdin="not-" + password + "\n") == 2  # a refused login, too
    assert cli(*add, stdin=password + "\n") == 0
    box = "1"
    assert cli("mailbox", "edit", box, "--password-stdin", stdin=password) == 0
    smtp_args = ("mailbox", "smtp", box, "--host", "127.0.0.1", "--port", str(smtp.smtps_port))
    smtp_args += ("--security", "ssl", "--username", smtp.username, "--password-stdin")
    smtp_args += ("--allow-self-signed",)
    assert cli(*smtp_args, stdin=smtp.password + "\n") == 0
    assert cli("mailbox", "test", box) == 0
    assert cli("sync", "--once") == 0
    tx_guard.assert_clean()


def test_api_connect_edit_smtp_and_test_hold_no_transaction_while_talking(
    web: TestClient,
    sqlite_app: App,
    dovecot: DovecotServer,
    imap_user: tuple[str, str],
    smtp: SmtpTestServer,
    tx_guard: TxGuard,
) -> None:
    tenant = seed_tenant(sqlite_app, "Alpha")
    user, password = imap_user
    seed(dovecot, user, "INBOX", 2)
    api = {"Authorization": f"Bearer {tenant.member_token}"}
    body = {
        "host": dovecot.host,
        "port": dovecot.imaps_port,
        "username": user,
        "password": password,
        "allow_self_signed": True,
    }
    made = web.post("/api/v1/mailboxes", json=body, headers=api)
    assert made.status_code == 201, made.text
    box = made.json()["id"]
    wait_for_syncs(box)  # the first sync runs in a background thread: guarded as well
    edited = web.patch(f"/api/v1/mailboxes/{box}", json={"password": password}, headers=api)
    assert edited.is_success, edited.text
    wait_for_syncs(box)
    smtp_body = {
        "host": "127.0.0.1",
        "port": smtp.smtps_port,
        "security": "ssl",
        "username": smtp.username,
        "password": smtp.password,
    }
    put = web.put(f"/api/v1/mailboxes/{box}/smtp", json=smtp_body, headers=api)
    assert put.is_success, put.text
    tested = web.post(f"/api/v1/mailboxes/{box}/test", headers=api)
    assert tested.json()["ok"], tested.text
    tx_guard.assert_clean()


def test_a_send_through_the_outbox_holds_no_transaction_while_talking(
    sqlite_app: App,
    dovecot: DovecotServer,
    imap_user: tuple[str, str],
    smtp: SmtpTestServer,
    monkeypatch: pytest.MonkeyPatch,
    tx_guard: TxGuard,
) -> None:
    env = make_outbox_env(sqlite_app, dovecot, imap_user, smtp, monkeypatch)
    request = SendRequest(
        mailbox_id=env.mailbox_id,
        to=["Jo Client <jo@client.example>"],
        subject="Your quote",
        text="Hello Jo,\n",
    )
    with transaction(sqlite_app.sessions) as session:
        queue_message(session, request=request)
    assert [r.status for r in process_due(sqlite_app)] == ["sent"]
    assert len(smtp.messages) == 1
    tx_guard.assert_clean()


def test_retro_backfill_holds_no_transaction_while_talking(
    sqlite_app: App,
    dovecot: DovecotServer,
    imap_user: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tx_guard: TxGuard,
) -> None:
    login = imap_user[0]
    old = datetime.now(UTC) - timedelta(days=400)
    data = build_message(sender="sue@client.example", to=f"{login}@acme.example", subject="Old")
    dovecot.append(login, "INBOX", data, internaldate=old)
    since = (datetime.now(UTC) - timedelta(days=30)).date()
    connect_mailbox(sqlite_app, dovecot, imap_user, since=since, folders=("INBOX",))
    with transaction(sqlite_app.sessions) as session:
        company = session.scalars(select(Company)).one()
        email = EmailField("main", "sue@client.example")
        record = add_record(
            session, company=company, record_type="contact", name="Sue", emails=[email]
        )
        ref = record.ref
    capsys.readouterr()
    assert run_cli(sqlite_app, monkeypatch, "records", "backfill", ref, "--json") == 0
    assert json.loads(capsys.readouterr().out)["fetched"] == 1
    tx_guard.assert_clean()


def test_dashboard_test_connect_and_settings_forms_hold_no_transaction_while_talking(
    web: TestClient,
    sqlite_app: App,
    dovecot: DovecotServer,
    imap_user: tuple[str, str],
    smtp: SmtpTestServer,
    tx_guard: TxGuard,
) -> None:
    tenant = seed_tenant(sqlite_app, "Alpha")
    user, password = imap_user
    csrf = sign_in(web, tenant.member)
    form = {
        "csrf_token": csrf,
        "protocol": "imap",
        "host": dovecot.host,
        "port": str(dovecot.imaps_port),
        "security": "ssl",
        "username": user,
        "password": password,
        "allow_self_signed": "true",
    }
    tested = web.post("/mailboxes/test", data=form, headers=ORIGIN)
    assert tested.status_code == 200, tested.text
    made = web.post("/mailboxes", data=form, headers=ORIGIN, follow_redirects=False)
    assert made.status_code == 303, made.text
    with sqlite_app.sessions() as session:
        box = session.scalars(select(Mailbox.id).where(Mailbox.username == user)).one()
    wait_for_syncs(box)
    changed = {"csrf_token": csrf, "password": password}
    assert web.post(f"/mailboxes/{box}/password", data=changed, headers=ORIGIN).is_success
    wait_for_syncs(box)
    smtp_form = {
        "csrf_token": csrf,
        "smtp_host": "127.0.0.1",
        "smtp_port": str(smtp.smtps_port),
        "smtp_security": "ssl",
        "smtp_username": smtp.username,
        "smtp_password": smtp.password,
    }
    assert web.post(f"/mailboxes/{box}/smtp", data=smtp_form, headers=ORIGIN).is_success
    retest = web.post(f"/mailboxes/{box}/test", data={"csrf_token": csrf}, headers=ORIGIN)
    assert retest.status_code == 200, retest.text
    tx_guard.assert_clean()


def test_a_pop3_sync_holds_no_transaction_while_talking(
    sqlite_app: App, dovecot: DovecotServer, imap_user: tuple[str, str], tx_guard: TxGuard
) -> None:
    seed(dovecot, imap_user[0], "INBOX", 3)
    box = connect_mailbox(sqlite_app, dovecot, imap_user, protocol="pop3")
    assert sync_mailbox(sqlite_app, box).messages == 3
    tx_guard.assert_clean()


def test_oauth_token_refresh_and_sync_hold_no_transaction_while_talking(
    sqlite_app: App,
    oauth_provider: OAuthProvider,
    oauth_dovecot: DovecotServer,
    oauth_user: str,
    tx_guard: TxGuard,
) -> None:
    box = oauth_mailbox(sqlite_app, oauth_provider, oauth_dovecot, oauth_user, expires_in=30)
    with connect_with_token(sqlite_app, box, settings_of(sqlite_app, box), connect) as source:
        assert source.list_folders()  # refreshed first: the token call is HTTP
    oauth_provider.advance(60)  # the provider says it expired: refused, refreshed, retried
    sync_mailbox(sqlite_app, box)
    tx_guard.assert_clean()


def _stored(app: App, subject: str) -> bool:
    with app.sessions() as session:
        return session.scalar(select(Message.id).where(Message.subject == subject)) is not None


def _wait_until_stored(app: App, subject: str) -> bool:
    deadline = time.monotonic() + 60  # bounds a hang only; nothing timed is asserted
    while time.monotonic() < deadline:
        if _stored(app, subject):
            return True
        time.sleep(0.05)
    return False


def test_the_serve_scheduler_polling_and_idle_hold_no_transaction_while_talking(
    sqlite_app: App, dovecot: DovecotServer, imap_user: tuple[str, str], tx_guard: TxGuard
) -> None:
    login = imap_user[0]
    seed(dovecot, login, "INBOX", 2)
    connect_mailbox(sqlite_app, dovecot, imap_user, folders=("INBOX",))
    scheduler = PollScheduler(sqlite_app, interval=3600, tick=0.2)
    scheduler.start()
    try:
        assert _wait_until_stored(sqlite_app, "Message 1")  # the first poll
        deadline = time.monotonic() + 30
        while not (scheduler._idle and scheduler._idle.watchers) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # let the watcher enter IDLE
        pushed = build_message(to=f"{login}@acme.example", subject="Pushed")
        dovecot.append(login, "INBOX", pushed)
        assert _wait_until_stored(sqlite_app, "Pushed")  # IDLE (the next poll is an hour away)
    finally:
        scheduler.stop()
    tx_guard.assert_clean()


def test_the_drop_address_receiver_holds_no_transaction_while_talking(
    sqlite_app: App, monkeypatch: pytest.MonkeyPatch, tx_guard: TxGuard
) -> None:
    monkeypatch.setenv("MAILROOM_DROPBOX_DOMAIN", "drop.acme.example")
    with transaction(sqlite_app.sessions) as session:
        company = add_company(session, name="Acme", domains=["acme.example"])
        ann = add_user(session, company=company, email="ann@acme.example", name="Ann")
        add_mailbox(session, sqlite_app.secrets, user=ann, host="imap.test", port=993, password="x")
        address = drop_address(ensure_token(session, company=company).token)
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = int(probe.getsockname()[1])
    server = start_dropbox_server(sqlite_app, "127.0.0.1", port)
    try:
        data = build_message(sender="Ann <ann@acme.example>", to="jo@client.example")
        with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
            client.sendmail("ann@acme.example", [address], data)
    finally:
        server.stop()
    with sqlite_app.sessions() as session:
        assert session.scalar(select(Message.id)) is not None
    tx_guard.assert_clean()

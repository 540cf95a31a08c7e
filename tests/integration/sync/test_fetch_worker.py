"""The fetch worker (sync/fetch_worker.py) against the real Dovecot: a large fetch parsed in
worker processes stores exactly what the in-process sync stores, keeps no raw copy of a
skipped message, and survives a cut connection, throttling and SIGKILL like the rest."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from mailroom.app import App
from mailroom.crm.companies import Company, add_company, add_user
from mailroom.crm.records import EmailField, add_record
from mailroom.db.engine import transaction
from mailroom.db.matching_models import MessageSkip
from mailroom.db.models import Message, MessageCopy, MessageLink, Record
from mailroom.errors import NetworkError
from mailroom.ingest.bodies import ensure_bodies
from mailroom.mail.blobs import STAGING
from mailroom.mailboxes.store import add_mailbox
from mailroom.sync.context import ProgressEvent
from mailroom.sync.engine import sync_mailbox
from mailroom_testing.builders import build_message
from mailroom_testing.dovecot import DovecotServer, imap_bytes
from mailroom_testing.fault_proxy import FaultProxy
from tests.helpers.sync_support import (
    assert_db_matches_server,
    connect_mailbox,
    db_ids,
    health,
    seed,
    server_ids,
    through,
)


def use_worker(app: App, minimum: int | None = 0) -> None:
    """Make every fetch of at least `minimum` messages go through the fetch worker."""
    app.settings = replace(app.settings, parse_worker_min=minimum)


def staging_left(app: App) -> list[Path]:
    staging = app.blobs.root / STAGING
    return sorted(staging.rglob("*")) if staging.exists() else []


def mixed_mail(login: str) -> list[bytes]:
    """Everyday mail plus one of each case the ingest path treats apart."""
    mail = [
        build_message(
            sender="Jo Client <jo@client.example>",
            to=f"{login}@acme.example",
            subject=f"Order {n}",
            body=f"Line {n}\n" * (n + 1),
            minutes=n,
        )
        for n in range(24)
    ]
    mail.append(
        build_message(subject="Confidential: salaries", minutes=30, to=f"{login}@acme.example")
    )
    newsletter = build_message(sender="news@client.example", subject="News", minutes=31)
    mail.append(b"List-Id: <news.client.example>\r\n" + newsletter)
    no_id = build_message(sender="sam@other.example", subject="No id", minutes=32)
    mail.append(
        b"\r\n".join(line for line in no_id.split(b"\r\n") if not line.startswith(b"Message-ID"))
    )
    mail.append(
        build_message(
            sender=f"{login}@acme.example", to="jo@client.example", subject="Reply", minutes=33
        )
    )
    return mail


def stored(app: App, company: str) -> list[tuple[object, ...]]:
    """Everything the sync stored for one company, comparable across companies."""
    with app.sessions() as session:
        company_id = session.scalars(select(Company.id).where(Company.name == company)).one()
        rows = session.execute(
            select(
                Message.identity,
                Message.subject,
                Message.direction,
                Message.size,
                Message.raw_sha256,
                Message.bodies_parsed,
                Message.from_address,
                Message.to_addresses,
                MessageCopy.uid,
                MessageCopy.flags,
                MessageSkip.skipped_by,
            )
            .join(MessageCopy, MessageCopy.message_id == Message.id)
            .outerjoin(MessageSkip, MessageSkip.message_id == Message.id)
            .where(Message.company_id == company_id)
            .order_by(MessageCopy.uid)
        ).all()
        links = session.execute(
            select(Message.identity, Record.name, MessageLink.reason)
            .join(MessageLink, MessageLink.message_id == Message.id)
            .join(Record, Record.id == MessageLink.record_id)
            .where(Message.company_id == company_id)
            .order_by(Message.identity, Record.name)
        ).all()
    return [tuple(r) for r in rows] + [tuple(r) for r in links]


def second_company_mailbox(
    app: App, dovecot: DovecotServer, user: tuple[str, str], *, company: str, who: str = "other"
) -> int:
    """Another company (same domain, another user) reading the same server mailbox."""
    login, password = user
    with transaction(app.sessions) as session:
        owner_company = add_company(session, name=company, domains=["acme.example"])
        owner = add_user(session, company=owner_company, email=f"{who}-{login}@acme.example")
        box = add_mailbox(
            session,
            app.secrets,
            user=owner,
            host=dovecot.host,
            port=dovecot.imaps_port,
            password=password,
            username=login,
            allow_self_signed=True,
            folders=("INBOX",),
        )
        return box.id


def add_contact(app: App, company: str) -> None:
    with transaction(app.sessions) as session:
        owner = session.scalars(select(Company).where(Company.name == company)).one()
        add_record(
            session,
            company=owner,
            record_type="contact",
            name="Jo",
            emails=[EmailField("main", "jo@client.example")],
        )


def test_the_worker_stores_exactly_what_the_in_process_sync_stores(
    any_app: App, dovecot: DovecotServer, imap_user: tuple[str, str]
) -> None:
    login = imap_user[0]
    mail = mixed_mail(login)
    for data in mail:
        dovecot.append(login, "INBOX", data)
    in_process = connect_mailbox(any_app, dovecot, imap_user, folders=("INBOX",), company="One")
    worker = second_company_mailbox(any_app, dovecot, imap_user, company="Two")
    add_contact(any_app, "One")
    add_contact(any_app, "Two")

    use_worker(any_app, None)
    assert sync_mailbox(any_app, in_process, batch_size=5).error is None
    use_worker(any_app, 0)
    report = sync_mailbox(any_app, worker, batch_size=5)

    assert report.error is None and report.fetched == len(mail)
    one, two = stored(any_app, "One"), stored(any_app, "Two")
    assert one == two
    skipped = {row[-1] for row in two if len(row) == 11 and row[-1]}
    assert skipped == {"filter:confidential", "filter:bulk"}
    assert any(len(row) == 3 and row[2] == "address:main" for row in two)
    assert db_ids(any_app, worker, "INBOX") == server_ids(dovecot, login, "INBOX")
    # The raw bytes of every logged message are in the store, byte for byte; a skipped
    # message left no raw copy behind, and nothing is left in the staging area.
    files = [p for p in any_app.blobs.root.rglob("*") if p.is_file()]
    on_disk = b"".join(p.read_bytes() for p in files)
    with any_app.sessions() as session:  # company Two's rows: those the worker staged
        rows = session.execute(select(Message.raw_sha256, Message.raw_location))
        places = {digest: where for digest, where in rows if where is not None}
    for raw in mail:
        digest = hashlib.sha256(imap_bytes(raw)).hexdigest()
        keep = b"Confidential" not in raw and b"List-Id" not in raw
        assert (imap_bytes(raw) in on_disk) == keep
        if keep:
            assert digest in places, "staged by the worker: kept in its pack"
            assert any_app.blobs.read_raw(digest, places[digest]) == imap_bytes(raw)
    assert staging_left(any_app) == []
    with any_app.sessions() as session:  # bodies are parsed later, from the pack
        packed = select(Message).where(
            Message.raw_location.is_not(None), Message.subject == "Order 1"
        )
        message = session.scalars(packed).one()
        assert not message.bodies_parsed
        ensure_bodies(session, message, any_app.blobs, commit=True)
        assert message.bodies_parsed and message.text_body


def test_a_cut_in_a_worker_fetch_commits_what_came_before_and_loses_nothing(
    sqlite_app: App, dovecot: DovecotServer, imap_user: tuple[str, str], proxy: FaultProxy
) -> None:
    login = imap_user[0]
    sent = seed(dovecot, login, "INBOX", 30)
    box = connect_mailbox(sqlite_app, dovecot, imap_user, folders=("INBOX",))
    through(sqlite_app, box, proxy.port)
    use_worker(sqlite_app)
    proxy.cut_after(b"Subject: Message 17", extra=20)  # inside the second batch's literal

    report = sync_mailbox(sqlite_app, box, batch_size=10)

    assert proxy.fired and isinstance(report.error, NetworkError)
    assert health(sqlite_app, box).error_kind == "connection_lost"
    assert report.fetched == 10, "the first batch was committed, the cut one was not"
    assert sync_mailbox(sqlite_app, box, batch_size=10).error is None
    assert_db_matches_server(sqlite_app, dovecot, login, box, ("INBOX",))
    expected = {imap_bytes(raw) for raw in sent}
    with sqlite_app.sessions() as session:
        for digest, where in session.execute(select(Message.raw_sha256, Message.raw_location)):
            assert digest is not None and sqlite_app.blobs.read_raw(digest, where) in expected
    assert staging_left(sqlite_app) == []


def test_throttling_seen_by_the_worker_is_reported_as_throttling(
    sqlite_app: App, dovecot: DovecotServer, imap_user: tuple[str, str], proxy: FaultProxy
) -> None:
    seed(dovecot, imap_user[0], "INBOX", 3)
    box = connect_mailbox(sqlite_app, dovecot, imap_user, folders=("INBOX",))
    through(sqlite_app, box, proxy.port)
    use_worker(sqlite_app)
    proxy.answer(b"BODY.PEEK[]", b"{tag} NO [THROTTLED] Please slow down")

    report = sync_mailbox(sqlite_app, box)

    assert report.error is not None and proxy.fired
    mailbox = health(sqlite_app, box)
    assert (mailbox.status, mailbox.error_kind, mailbox.auth_failure_count) == (
        "error",
        "throttled",
        0,
    )
    assert sync_mailbox(sqlite_app, box).error is None


def test_a_stalled_worker_fetch_ends_when_the_sync_is_aborted(
    sqlite_app: App, dovecot: DovecotServer, imap_user: tuple[str, str], proxy: FaultProxy
) -> None:
    """The stage watchdog cuts the sync's own connection; the wait on the worker ends too."""
    import threading

    from mailroom.sync import engine

    seed(dovecot, imap_user[0], "INBOX", 4)
    box = connect_mailbox(sqlite_app, dovecot, imap_user, folders=("INBOX",))
    through(sqlite_app, box, proxy.port)
    use_worker(sqlite_app)
    proxy.stall_after(b"Subject: Message 2")

    def watchdog() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not proxy.fired:
            time.sleep(0.05)
        time.sleep(0.5)
        engine.ACTIVE[box].abort()

    threading.Thread(target=watchdog, daemon=True).start()
    started = time.monotonic()
    report = sync_mailbox(sqlite_app, box)

    assert report.error is not None and report.error.kind == "stalled"
    assert time.monotonic() - started < 20
    proxy.resume()
    assert staging_left(sqlite_app) == []


def fetch_workers() -> set[int]:
    """Pids of the live fetch worker processes on this machine."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().split()[2]
        except OSError:
            continue
        if b"mailroom.sync.fetch_worker" in cmdline and state != "Z":
            found.add(int(entry.name))
    return found


def test_sigkill_during_worker_fetches_then_rerun_equals_the_server(
    sqlite_app: App, dovecot: DovecotServer, imap_user: tuple[str, str], proxy: FaultProxy
) -> None:
    login = imap_user[0]
    seed(dovecot, login, "INBOX", 300)
    box = connect_mailbox(sqlite_app, dovecot, imap_user, folders=("INBOX",))
    # A slow link (~180 KB of mail at 20 KB/s per connection) keeps each killed sync
    # fetching for seconds, so the kills land mid-fetch however fast the machine is.
    through(sqlite_app, box, proxy.port)
    proxy.throttle(20_000)
    before = fetch_workers()
    env = dict(
        os.environ,
        MAILROOM_SECRET_KEY=sqlite_app.settings.secret_key_b64 or "",
        MAILROOM_PARSE_WORKER_MIN="0",
    )
    argv = [sys.executable, "-c", "from mailroom.cli import main; main()"]
    argv += ["--data-dir", str(sqlite_app.settings.data_dir), "sync", "--once"]
    for delay in (0.4, 1.0):
        proc = subprocess.Popen(
            [*argv, "--batch-size", "20"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while not (fetch_workers() - before):
            assert proc.poll() is None, "the sync ended before its fetch workers were seen"
            assert time.monotonic() < deadline, "no fetch worker started"
            time.sleep(0.02)
        time.sleep(delay)
        assert proc.poll() is None, "the sync ended before the kill: seed more mail"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        while fetch_workers() - before:  # orphaned workers notice and exit
            assert time.monotonic() < deadline, "a fetch worker outlived its sync"
            time.sleep(0.1)
    proxy.throttle(None)
    done = subprocess.run([*argv, "--batch-size", "20"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert_db_matches_server(sqlite_app, dovecot, login, box, ("INBOX",))
    assert staging_left(sqlite_app) == [], "the areas of the killed syncs were swept"
    with sqlite_app.sessions() as session:
        for digest, where in session.execute(select(Message.raw_sha256, Message.raw_location)):
            assert digest is not None and sqlite_app.blobs.read_raw(digest, where)


def test_worker_fetches_commit_larger_batches_unless_the_caller_chose_a_size(
    sqlite_app: App,
    dovecot: DovecotServer,
    imap_user: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mailroom.sync import engine

    login = imap_user[0]
    seed(dovecot, login, "INBOX", 25)
    default = connect_mailbox(sqlite_app, dovecot, imap_user, folders=("INBOX",))
    chosen = second_company_mailbox(sqlite_app, dovecot, imap_user, company="Two")
    in_process = second_company_mailbox(
        sqlite_app, dovecot, imap_user, company="Three", who="third"
    )
    monkeypatch.setattr(engine, "DEFAULT_BATCH", 4)
    monkeypatch.setattr(engine, "WORKER_BATCH", 10)

    def committed(box: int, *, workers: bool, batch_size: int | None = None) -> list[int]:
        use_worker(sqlite_app, 0 if workers else None)
        events: list[ProgressEvent] = []
        report = sync_mailbox(sqlite_app, box, batch_size=batch_size, progress=events.append)
        assert report.error is None and report.fetched == 25
        return list(dict.fromkeys(e.done for e in events if e.done))

    assert committed(default, workers=True) == [10, 20, 25]
    assert committed(chosen, workers=True, batch_size=5) == [5, 10, 15, 20, 25]
    assert committed(in_process, workers=False) == [4, 8, 12, 16, 20, 24, 25]
    for box in (default, chosen, in_process):
        assert db_ids(sqlite_app, box, "INBOX") == server_ids(dovecot, login, "INBOX")

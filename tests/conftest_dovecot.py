"""Pytest plugin: one real Dovecot for the whole test run, and a fresh user per test.

Register it from tests/conftest.py with `pytest_plugins = ["tests.conftest_dovecot"]`.

- `dovecot` (session): a started `DovecotServer` (see mailroom_testing/dovecot.py); skipped only
  when /usr/sbin/dovecot is not installed.
- `gmail_server` (session) and `gmail` (function, quota off, counters cleared): the Gmail
  stand-in, an IMAP proxy in front of the Dovecot (mailroom_testing/gmail_proxy.py).
- `imap_user` (function): `(username, password)` of a new user with an empty mailbox
  (INBOX, Sent, Drafts, Trash, Junk).
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailroom_testing.dovecot import DOVECOT_BIN, DovecotServer
from mailroom_testing.fault_proxy import FaultProxy
from mailroom_testing.gmail_proxy import GmailProxy


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    if not Path(DOVECOT_BIN).exists():
        pytest.skip(f"{DOVECOT_BIN} is not installed (apt-get install dovecot-imapd dovecot-pop3d)")
    # Not pytest's tmp_path: its basetemp is 0700 and the mail processes run as another user.
    root = Path(tempfile.mkdtemp(prefix="mailroom-dovecot-"))
    server = DovecotServer(root)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        problems = server.problems()
        shutil.rmtree(root, ignore_errors=True)
    if problems:
        warnings.warn("Dovecot logged:\n" + "\n".join(problems[:20]), stacklevel=1)


@pytest.fixture
def imap_user(dovecot: DovecotServer) -> tuple[str, str]:
    username = f"user-{secrets.token_hex(6)}"
    password = secrets.token_urlsafe(16)
    dovecot.add_user(username, password)
    return username, password


@pytest.fixture
def proxy(dovecot: DovecotServer) -> Iterator[FaultProxy]:
    """A TCP proxy in front of the test Dovecot's plain IMAP port, for injected faults."""
    fault = FaultProxy(dovecot.host, dovecot.imap_port)
    yield fault
    fault.close()


@pytest.fixture(scope="session")
def gmail_server(dovecot: DovecotServer) -> Iterator[GmailProxy]:
    """One Gmail stand-in (mailroom_testing/gmail_proxy.py) in front of the test Dovecot."""
    gmail = GmailProxy(dovecot)
    yield gmail
    gmail.close()


@pytest.fixture
def gmail(gmail_server: GmailProxy) -> Iterator[GmailProxy]:
    """The session's Gmail proxy with no quota and fresh counters for this test."""
    gmail_server.daily_quota = None
    gmail_server.new_day()
    gmail_server.commands.clear()
    gmail_server.bodies.clear()
    gmail_server.nil_bodies.clear()
    gmail_server.unreadable.clear()
    gmail_server.listed_sizes.clear()
    yield gmail_server
    gmail_server.daily_quota = None
    gmail_server.unreadable.clear()
    gmail_server.listed_sizes.clear()

"""Pytest plugin: one real Dovecot for the whole test run, and a fresh user per test.

Register it from tests/conftest.py with `pytest_plugins = ["tests.conftest_dovecot"]`.

- `dovecot` (session): a started `DovecotServer` (see mailroom_testing/dovecot.py); skipped only
  when /usr/sbin/dovecot is not installed.
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

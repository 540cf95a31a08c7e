"""Unit tier: no server at all (no Dovecot, PostgreSQL, SMTP, browser), SQLite in a tmp
dir is fine. Folders follow Mailroom's packages (tests/unit/matching/ tests
src/mailroom/matching/). A test here that asks for a server fixture stops the run: it
belongs in tests/integration/, and so does one that opens a TCP/IP socket (refused here by
an autouse fixture: connect and bind on AF_INET/AF_INET6 raise). `bin/test unit` runs this
tier alone, in under a minute.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest

from tests.helpers.tiers import BROWSER_FIXTURES, mark_tier, servers_of


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in mark_tier(items, __file__, "unit"):
        needs = servers_of(item) | (set(getattr(item, "fixturenames", ())) & BROWSER_FIXTURES)
        if needs:
            raise pytest.UsageError(
                f"{item.nodeid} is a unit test but needs {', '.join(sorted(needs))}: "
                "move it to tests/integration/ (or tests/interfaces/, tests/e2e/)."
            )


def _refuse_network(original: Callable[..., Any]) -> Callable[..., Any]:
    def guarded(sock: socket.socket, *args: Any) -> Any:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            raise RuntimeError(
                "a unit test opened a network socket: it needs a server, so it belongs in "
                "tests/integration/"
            )
        return original(sock, *args)

    return guarded


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests talk to no server, not even one of their own on loopback."""
    for name in ("connect", "connect_ex", "bind"):
        monkeypatch.setattr(socket.socket, name, _refuse_network(getattr(socket.socket, name)))

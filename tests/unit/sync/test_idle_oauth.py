"""An IDLE watcher whose OAuth grant was revoked stops and asks for one sync (which records
`oauth_revoked`) instead of reconnecting with the dead token in a loop."""

from __future__ import annotations

import time

from mailroom.connectors.imap import ImapSource
from mailroom.errors import OAuthRevoked
from mailroom.sync.idle import IdleHub


def test_a_revoked_grant_stops_the_idle_watcher_after_one_sync_request() -> None:
    opened: list[int] = []
    changed: list[int] = []

    def opener() -> ImapSource:
        opened.append(1)
        raise OAuthRevoked("The provider refused the sign-in (invalid_grant)")

    hub = IdleHub(on_change=changed.append, first_backoff=0.1)
    try:
        watched = hub.watch((7, "INBOX"), opener)
        deadline = time.monotonic() + 10
        while watched.alive and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # a retry, if there were one, would have come by now
    finally:
        hub.stop()
    assert not watched.alive
    assert opened == [1] and changed == [7]

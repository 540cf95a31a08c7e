"""An IDLE watcher whose OAuth grant was revoked stops and asks for one sync (which records
`oauth_revoked`) instead of reconnecting with the dead token in a loop."""

from __future__ import annotations

from mailroom.connectors.imap import ImapSource
from mailroom.errors import OAuthRevoked
from mailroom.sync.idle import IdleWatcher


def test_a_revoked_grant_stops_the_idle_watcher_after_one_sync_request() -> None:
    opened: list[int] = []
    changed: list[int] = []

    def opener() -> ImapSource:
        opened.append(1)
        raise OAuthRevoked("The provider refused the sign-in (invalid_grant)")

    watcher = IdleWatcher(mailbox_id=7, folder="INBOX", opener=opener, on_change=changed.append)
    watcher.start()
    watcher.join(30)
    assert not watcher.is_alive()
    assert opened == [1] and changed == [7]

"""Deliver more mail to a seeded tenant's mailbox through the real sync engine."""

from __future__ import annotations

from mailroom.app import App
from mailroom.sync.engine import sync_mailbox
from mailroom_testing.memory_source import MemorySource


def deliver(app: App, mailbox_id: int, *messages: bytes, first_uid: int = 1000) -> None:
    """Sync `messages` into the mailbox as INBOX mail with UIDs from `first_uid` (past the
    ones `seed_tenant` used), so a second delivery needs a higher `first_uid`."""
    source = MemorySource()
    source.folders["INBOX"].uidnext = first_uid
    for data in messages:
        source.folders["INBOX"].append(data)
    report = sync_mailbox(app, mailbox_id, opener=lambda _m, _a: source)
    assert report.error is None, report.error

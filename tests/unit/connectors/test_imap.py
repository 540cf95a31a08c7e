"""The IMAP connector without a server: folder roles fall back to well-known names when the
server has no SPECIAL-USE (RFC 6154). Against the real Dovecot: tests/integration/connectors/."""

from __future__ import annotations

from mailroom.connectors.base import FolderInfo, FolderRole
from mailroom.connectors.imap import assign_roles, default_sync_folders


def test_roles_fall_back_to_well_known_names() -> None:
    roles = assign_roles(
        [
            ("inbox", ".", set()),
            ("INBOX.Sent Items", ".", set()),
            ("INBOX.Sent", ".", set()),  # ranks above "sent items"
            ("[Gmail]/Spam", "/", {"\\hasnochildren"}),
            ("Deleted Items", "/", set()),
            ("Notes", "/", set()),
        ]
    )
    assert roles == [
        FolderRole.INBOX,
        FolderRole.OTHER,
        FolderRole.SENT,
        FolderRole.JUNK,
        FolderRole.TRASH,
        FolderRole.OTHER,
    ]
    # A SPECIAL-USE attribute wins over any name.
    assert assign_roles([("Sent", "/", set()), ("Outbox", "/", {"\\sent"})]) == [
        FolderRole.OTHER,
        FolderRole.SENT,
    ]
    folders = [
        FolderInfo("[Gmail]/Sent Mail", FolderRole.SENT),
        FolderInfo("INBOX", FolderRole.INBOX),
    ]
    assert default_sync_folders(folders) == ["INBOX", "[Gmail]/Sent Mail"]

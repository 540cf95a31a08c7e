"""IMAP flags on copies: stored at fetch, kept current from the server, never written back.

Against the real Dovecot (CONDSTORE and QRESYNC offered). A second client sets and clears
flags with UID STORE; the next sync must show them on the copy rows, through each path:
QRESYNC (CHANGEDSINCE + VANISHED), CONDSTORE only (CHANGEDSINCE + UID SEARCH), and no
stored HIGHESTMODSEQ (every FLAGS, RFC 3501). Mailroom itself never changes a flag.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from mailroom.app import App
from mailroom.connectors.base import MailboxSource
from mailroom.connectors.imap import ImapSource
from mailroom.db.engine import transaction
from mailroom.db.models import FolderState, Mailbox, MessageCopy
from mailroom.sync.connect import open_source
from mailroom.sync.engine import sync_mailbox
from mailroom_testing.builders import build_message
from mailroom_testing.dovecot import DovecotServer
from mailroom_testing.fault_proxy import FaultProxy
from tests.helpers.sync_support import assert_db_matches_server, connect_mailbox, through


def copy_flags(app: App, mailbox_id: int) -> dict[int, set[str]]:
    with app.sessions() as session:
        rows = session.execute(
            select(MessageCopy.uid, MessageCopy.flags).where(MessageCopy.mailbox_id == mailbox_id)
        )
        return {uid: set(flags) for uid, flags in rows}


def store(dovecot: DovecotServer, login: str, uid: int, change: str, flag: str) -> None:
    """Another client changes a flag (UID STORE, RFC 3501 §6.4.6) on a second connection."""
    conn = dovecot.session(login)
    assert conn.select("INBOX")[0] == "OK"
    assert conn.uid("STORE", str(uid), change, f"({flag})")[0] == "OK"
    conn.close()


@pytest.mark.parametrize("path", ["qresync", "condstore", "no-modseq"])
def test_flags_set_by_another_client_show_on_the_copy_after_the_next_sync(
    sqlite_app: App,
    dovecot: DovecotServer,
    imap_user: tuple[str, str],
    proxy: FaultProxy,
    path: str,
) -> None:
    login = imap_user[0]
    for n, flags in enumerate([(), ("\\Seen",), ("\\Seen", "$Label1"), ()]):
        message = build_message(sender=f"client{n}@client.example", minutes=n)
        dovecot.append(login, "INBOX", message, flags=flags)
    box = connect_mailbox(sqlite_app, dovecot, imap_user, folders=("INBOX",))
    if path != "qresync":  # a server without QRESYNC: CHANGEDSINCE, or no modseq at all
        proxy.hide(b"QRESYNC")
        through(sqlite_app, box, proxy.port)

    def opener(mailbox: Mailbox, app: App) -> MailboxSource:
        source = open_source(mailbox, app)
        assert isinstance(source, ImapSource)
        assert source.supports("QRESYNC") is (path == "qresync")
        return source

    assert sync_mailbox(sqlite_app, box, opener=opener).error is None
    assert copy_flags(sqlite_app, box) == {
        1: set(),
        2: {"\\Seen"},
        3: {"\\Seen", "$Label1"},
        4: set(),
    }
    store(dovecot, login, 1, "+FLAGS", "\\Flagged")
    store(dovecot, login, 2, "-FLAGS", "\\Seen")
    store(dovecot, login, 3, "+FLAGS", "\\Answered")
    if path == "no-modseq":  # a server without CONDSTORE never gave us a HIGHESTMODSEQ
        with transaction(sqlite_app.sessions) as session:
            session.execute(update(FolderState).values(highestmodseq=None))
    server_before = dovecot.flags(login, "INBOX")

    report = sync_mailbox(sqlite_app, box, opener=opener)

    assert report.error is None and report.fetched == 0
    assert report.folders[0].flags_changed == 3
    assert copy_flags(sqlite_app, box) == {
        1: {"\\Flagged"},
        2: set(),
        3: {"\\Seen", "$Label1", "\\Answered"},
        4: set(),
    }
    # the sync read flags and changed none: the unread messages are still unread
    assert dovecot.flags(login, "INBOX") == server_before
    assert "\\Seen" not in server_before[1] | server_before[2] | server_before[4]
    again = sync_mailbox(sqlite_app, box, opener=opener)
    assert again.error is None and again.folders[0].skipped  # HIGHESTMODSEQ unchanged
    assert_db_matches_server(sqlite_app, dovecot, login, box, ("INBOX",))


def test_a_flag_change_and_an_expunge_in_one_resync_both_land(
    sqlite_app: App, dovecot: DovecotServer, imap_user: tuple[str, str]
) -> None:
    login = imap_user[0]
    for n in range(3):
        dovecot.append(login, "INBOX", build_message(sender=f"c{n}@client.example", minutes=n))
    box = connect_mailbox(sqlite_app, dovecot, imap_user, folders=("INBOX",))
    assert sync_mailbox(sqlite_app, box).error is None
    store(dovecot, login, 1, "+FLAGS", "\\Seen")
    conn = dovecot.session(login)
    conn.select("INBOX")
    assert conn.uid("STORE", "3", "+FLAGS.SILENT", "(\\Deleted)")[0] == "OK"
    assert conn.uid("EXPUNGE", "3")[0] == "OK"
    conn.close()

    report = sync_mailbox(sqlite_app, box)

    assert report.error is None and (report.gone, report.folders[0].flags_changed) == (1, 1)
    assert copy_flags(sqlite_app, box)[1] == {"\\Seen"}
    with sqlite_app.sessions() as session:
        gone = session.scalar(select(MessageCopy.gone_at).where(MessageCopy.uid == 3))
    assert gone is not None

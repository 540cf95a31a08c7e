"""Gmail's folder model, against the real Dovecot behind the Gmail proxy (the one stand-in:
mailroom_testing/gmail_proxy.py adds X-GM-EXT-1, All Mail, X-GM-MSGID, X-GM-LABELS,
X-GM-RAW and the daily download quota as Google documents them).

A Gmail mailbox syncs `[Gmail]/All Mail` alone: a message in five labels is fetched once
and its copy carries the five labels; `\\Sent` tells sent from received; the inbox is
backfilled first; over the quota the mailbox pauses and later resumes; a resync with
nothing new fetches nothing; a server without the extensions is synced as before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from mailroom.app import App
from mailroom.crm.records import EmailField, add_record
from mailroom.db.engine import transaction
from mailroom.db.models import Company, FolderState, Mailbox, Message, MessageCopy
from mailroom.services.mailboxes import mailbox_json
from mailroom.sync.engine import sync_mailbox
from mailroom.sync.retro import backfill_record
from mailroom_testing.builders import build_message
from mailroom_testing.dovecot import DovecotServer
from mailroom_testing.gmail_proxy import ALL_MAIL, GmailProxy
from tests.helpers.sync_support import connect_mailbox, expunge, health, seed, through


def gmail_box(app: App, gmail: GmailProxy, user: tuple[str, str]) -> int:
    """A mailbox of `user` reached through the Gmail proxy."""
    gmail.prepare(user[0])
    box = connect_mailbox(app, gmail.dovecot, user)
    through(app, box, gmail.port)
    return box


def mail(login: str, n: int, **kw: object) -> bytes:
    """A distinct message to the user; keywords go to build_message."""
    kw.setdefault("sender", "Jo Client <jo@client.example>")
    kw.setdefault("to", f"{login}@acme.example")
    return build_message(subject=f"Gmail {n}", body=f"Body {n}", minutes=n, **kw)  # type: ignore[arg-type]


def fetched_uids(gmail: GmailProxy) -> list[int]:
    """The UIDs whose bodies the proxy sent, in the order it sent them."""
    return list(gmail.bodies)


def copies_of(app: App, box: int) -> list[MessageCopy]:
    with app.sessions() as session:
        return list(session.scalars(select(MessageCopy).where(MessageCopy.mailbox_id == box)))


def test_a_message_in_five_labels_is_fetched_once_and_its_copy_shows_the_five_labels(
    any_app: App, gmail: GmailProxy, imap_user: tuple[str, str]
) -> None:
    """On SQLite and PostgreSQL (the labels column, the X-GM-MSGID kept on the copy)."""
    login = imap_user[0]
    labels = ["\\Inbox", "\\Important", "\\Starred", "Customers", "Leads 2026"]
    msgid = gmail.deliver(login, mail(login, 1), labels)
    gmail.deliver(login, mail(login, 2), ["\\Inbox"])
    box = gmail_box(any_app, gmail, imap_user)

    report = sync_mailbox(any_app, box)

    assert report.error is None, report.error
    assert [f.name for f in report.folders] == [ALL_MAIL], "All Mail alone, no label folder"
    assert report.fetched == 2 and sorted(fetched_uids(gmail)) == [1, 2]
    assert not any(b"EXAMINE INBOX" in c or b"Customers" in c for c in gmail.commands)
    rows = copies_of(any_app, box)
    assert len(rows) == 2, "one copy per message, not one per label"
    labelled = next(c for c in rows if c.server_id == str(msgid))
    assert labelled.folder == ALL_MAIL
    assert labelled.labels == sorted(labels)
    with any_app.sessions() as session:
        assert len(list(session.scalars(select(Message.id)))) == 2


def test_the_sent_label_tells_sent_mail_from_received_mail(
    sqlite_app: App, gmail: GmailProxy, imap_user: tuple[str, str]
) -> None:
    login = imap_user[0]
    # Sent from an address of Ann's the company does not know: only the label says so.
    gmail.deliver(
        login,
        mail(login, 1, sender="Ann <ann.private@elsewhere.example>", to="jo@client.example"),
        ["\\Sent"],
    )
    gmail.deliver(login, mail(login, 2), ["\\Inbox"])
    box = gmail_box(sqlite_app, gmail, imap_user)

    assert sync_mailbox(sqlite_app, box).error is None

    with sqlite_app.sessions() as session:
        rows = session.execute(
            select(Message.subject, Message.direction, MessageCopy.labels).join(
                MessageCopy, MessageCopy.message_id == Message.id
            )
        ).all()
    found = {subject: (direction, labels) for subject, direction, labels in rows}
    assert found == {
        "Gmail 1": ("outbound", ["\\Sent"]),
        "Gmail 2": ("inbound", ["\\Inbox"]),
    }


def test_the_backfill_fetches_the_inbox_first_then_the_rest_newest_first(
    sqlite_app: App, gmail: GmailProxy, imap_user: tuple[str, str]
) -> None:
    login = imap_user[0]
    for n in range(1, 7):  # All Mail UIDs 1..6; 2 and 4 are in the inbox, the rest archived
        gmail.deliver(login, mail(login, n), ["\\Inbox"] if n in (2, 4) else ["Customers"])
    box = gmail_box(sqlite_app, gmail, imap_user)

    report = sync_mailbox(sqlite_app, box, batch_size=1)

    assert report.error is None, report.error
    assert fetched_uids(gmail) == [4, 2, 6, 5, 3, 1]
    assert any(b'X-GM-RAW "in:inbox"' in c for c in gmail.commands)


def test_over_the_daily_quota_the_mailbox_pauses_until_a_resume_time_then_resumes(
    sqlite_app: App, gmail: GmailProxy, imap_user: tuple[str, str]
) -> None:
    login = imap_user[0]
    for n in range(1, 6):
        gmail.deliver(login, mail(login, n), ["\\Inbox"])
    box = gmail_box(sqlite_app, gmail, imap_user)
    gmail.daily_quota = 1  # the first batch goes through, the next FETCH is refused

    first = sync_mailbox(sqlite_app, box, batch_size=2)

    assert first.error is not None and first.fetched == 2
    row = health(sqlite_app, box)
    assert (row.status, row.error_kind) == ("paused", "bandwidth_limit")
    assert row.auth_failure_count == 0 and row.failing_since is None
    resume = row.next_attempt_at
    assert resume is not None
    assert resume.replace(tzinfo=UTC) > datetime.now(UTC) + timedelta(minutes=30)
    assert "Paused until" in (row.last_error or "") and "bandwidth" in (row.last_error or "")
    with sqlite_app.sessions() as session:
        shown = mailbox_json(session=session, mailboxes=[session.get(Mailbox, box)])[0]  # type: ignore[list-item]
    assert shown["status"] == "paused" and "resumes at" in shown["status_words"]
    assert "resumes by itself" in shown["hint"]

    commands = len(gmail.commands)
    again = sync_mailbox(sqlite_app, box, batch_size=2)  # before the resume time: no loop
    assert again.skipped == "paused" and len(gmail.commands) == commands

    gmail.new_day()
    gmail.daily_quota = 1 << 20  # a new day, and the rest fits in it
    with transaction(sqlite_app.sessions) as session:  # the resume time has come
        mailbox = session.get(Mailbox, box)
        assert mailbox is not None
        mailbox.next_attempt_at = datetime.now(UTC) - timedelta(seconds=1)
    resumed = sync_mailbox(sqlite_app, box, batch_size=2)

    assert resumed.error is None, resumed.error
    assert health(sqlite_app, box).status == "ok"
    uids = fetched_uids(gmail)
    assert sorted(uids) == [1, 2, 3, 4, 5], "the two stored before the pause are not refetched"


def test_a_resync_with_nothing_new_fetches_nothing_and_new_mail_once(
    sqlite_app: App, gmail: GmailProxy, imap_user: tuple[str, str]
) -> None:
    login = imap_user[0]
    for n in range(1, 4):
        gmail.deliver(login, mail(login, n), ["\\Inbox", "Customers"])
    box = gmail_box(sqlite_app, gmail, imap_user)
    assert sync_mailbox(sqlite_app, box).fetched == 3
    gmail.commands.clear()
    gmail.bodies.clear()

    quiet = sync_mailbox(sqlite_app, box)

    assert quiet.error is None and quiet.fetched == 0
    assert all(f.skipped for f in quiet.folders)
    assert not any(b"FETCH" in c for c in gmail.commands), gmail.commands

    gmail.deliver(login, mail(login, 4), ["\\Inbox", "Customers", "\\Starred"])
    later = sync_mailbox(sqlite_app, box)
    assert later.fetched == 1
    assert fetched_uids(gmail) == [4]
    assert len(copies_of(sqlite_app, box)) == 4


def test_a_server_without_gmail_extensions_still_syncs_inbox_and_sent(
    sqlite_app: App, dovecot: DovecotServer, imap_user: tuple[str, str]
) -> None:
    login = imap_user[0]
    seed(dovecot, login, "INBOX", 2)
    seed(dovecot, login, "Sent", 1, start=10)
    box = connect_mailbox(sqlite_app, dovecot, imap_user)

    report = sync_mailbox(sqlite_app, box)

    assert report.error is None, report.error
    assert [f.name for f in report.folders] == ["INBOX", "Sent"]
    rows = copies_of(sqlite_app, box)
    assert sorted(c.folder for c in rows) == ["INBOX", "INBOX", "Sent"]
    assert all(c.labels == [] and c.server_id is None for c in rows)
    with sqlite_app.sessions() as session:
        names = set(session.scalars(select(FolderState.name).where(FolderState.mailbox_id == box)))
    assert names == {"INBOX", "Sent"}


def test_changed_labels_and_flags_are_stored_and_a_message_gone_from_all_mail_is_marked_gone(
    sqlite_app: App, gmail: GmailProxy, imap_user: tuple[str, str]
) -> None:
    login = imap_user[0]
    first = mail(login, 1)
    gmail.deliver(login, first, ["\\Inbox"])
    gmail.deliver(login, mail(login, 2), ["\\Inbox"])
    box = gmail_box(sqlite_app, gmail, imap_user)
    assert sync_mailbox(sqlite_app, box).fetched == 2
    gmail.bodies.clear()
    # Another client labels the first "Partners" and stars it; the second is deleted.
    gmail.deliver_label(login, first, "Partners")
    conn = gmail.dovecot.session(login)
    conn.select(f'"{ALL_MAIL}"')
    assert conn.uid("STORE", "1", "+FLAGS.SILENT", "(\\Flagged)")[0] == "OK"
    conn.close()
    expunge(gmail.dovecot, login, ALL_MAIL, [2])

    report = sync_mailbox(sqlite_app, box)

    assert report.error is None and report.fetched == 0 and gmail.bodies == []
    assert report.gone == 1 and report.folders[0].flags_changed == 1
    by_uid = {c.uid: c for c in copies_of(sqlite_app, box)}
    assert by_uid[1].labels == ["Partners", "\\Inbox"] and by_uid[1].flags == ["\\Flagged"]
    assert by_uid[2].gone_at is not None


def test_after_a_uidvalidity_change_messages_come_back_by_x_gm_msgid_without_a_refetch(
    any_app: App, gmail: GmailProxy, imap_user: tuple[str, str]
) -> None:
    login = imap_user[0]
    sent = [mail(login, n) for n in (1, 2, 3)]
    for raw in sent:
        gmail.deliver(login, raw, ["\\Inbox"])
    box = gmail_box(any_app, gmail, imap_user)
    assert sync_mailbox(any_app, box).fetched == 3
    gmail.bodies.clear()
    before = gmail.dovecot.session(login).status(f'"{ALL_MAIL}"', "(UIDVALIDITY)")
    gmail.rebuild_all_mail(login, sent)  # a new UIDVALIDITY, the same X-GM-MSGIDs
    after = gmail.dovecot.session(login).status(f'"{ALL_MAIL}"', "(UIDVALIDITY)")
    assert before != after

    report = sync_mailbox(any_app, box)

    assert report.error is None, report.error
    assert report.folders[0].uidvalidity_changed
    assert report.fetched == 0 and gmail.bodies == []
    rows = copies_of(any_app, box)
    live = [c for c in rows if c.gone_at is None]
    assert len(rows) == 6 and len(live) == 3
    assert {c.message_id for c in live} == {c.message_id for c in rows if c.gone_at}
    with any_app.sessions() as session:
        assert len(list(session.scalars(select(Message.id)))) == 3


def test_the_since_window_holds_and_a_record_backfill_finds_older_mail_in_all_mail_with_labels(
    sqlite_app: App, gmail: GmailProxy, imap_user: tuple[str, str]
) -> None:
    login = imap_user[0]
    old = datetime.now(UTC) - timedelta(days=400)
    msgid = gmail.deliver(
        login,
        mail(login, 1, sender="Sue <sue@client.example>"),
        ["\\Inbox", "Customers"],
        internaldate=old,
    )
    gmail.deliver(login, mail(login, 2), ["\\Inbox"])
    gmail.prepare(login)
    box = connect_mailbox(
        sqlite_app, gmail.dovecot, imap_user, since=(datetime.now(UTC) - timedelta(days=30)).date()
    )
    through(sqlite_app, box, gmail.port)
    assert sync_mailbox(sqlite_app, box).fetched == 1, "the old message is outside the window"
    with transaction(sqlite_app.sessions) as session:
        company = session.scalars(select(Company)).one()
        ref = add_record(
            session,
            company=company,
            record_type="contact",
            name="Sue",
            emails=[EmailField("main", "sue@client.example")],
        ).ref

    report = backfill_record(sqlite_app, company_id=company.id, ref=ref)

    assert (report.found, report.fetched, report.errors) == (1, 1, [])
    found = [c for c in copies_of(sqlite_app, box) if c.server_id == str(msgid)]
    assert [(c.folder, c.labels) for c in found] == [(ALL_MAIL, ["Customers", "\\Inbox"])]


def test_an_empty_gmail_account_syncs_to_ok_and_its_first_mail_arrives_with_labels(
    sqlite_app: App, gmail: GmailProxy, imap_user: tuple[str, str]
) -> None:
    login = imap_user[0]
    box = gmail_box(sqlite_app, gmail, imap_user)
    empty = sync_mailbox(sqlite_app, box)
    assert empty.error is None and empty.fetched == 0
    assert health(sqlite_app, box).status == "ok"

    gmail.deliver(login, mail(login, 1), ["\\Inbox", "Customers"])
    first = sync_mailbox(sqlite_app, box)

    assert first.error is None and first.fetched == 1
    assert [c.labels for c in copies_of(sqlite_app, box)] == [["Customers", "\\Inbox"]]

"""Shared set-up for the sync tests: a company, a mailbox, checks (the CLI: mailbox_state).

`connect_mailbox` makes a company with one user and one mailbox pointing at the test
Dovecot over IMAPS (or POP3S); `db_places` and `server_places` read what the database and
the server hold, so a test can assert "database equals server content: no duplicate, no
loss" in one line.
"""

from __future__ import annotations

import re
from datetime import date

from sqlalchemy import func, select

from mailroom.app import App
from mailroom.crm.companies import add_company, add_user
from mailroom.crm.records import EmailField, add_record
from mailroom.db.engine import transaction
from mailroom.db.models import Mailbox, Message, MessageCopy
from mailroom.mailboxes.store import add_mailbox
from mailroom_testing.builders import build_message
from mailroom_testing.dovecot import DovecotServer

_MSGID = re.compile(rb"^Message-ID:\s*(\S+)", re.I | re.M)


def connect_mailbox(
    app: App,
    dovecot: DovecotServer,
    user: tuple[str, str],
    *,
    protocol: str = "imap",
    since: date | None = None,
    folders: tuple[str, ...] = (),
    delete_after_fetch: bool = False,
    company: str = "Acme",
    limit: int | None = None,
) -> int:
    """A company with the user `<login>@acme.example` owning one mailbox; its id."""
    login, password = user
    with transaction(app.sessions) as session:
        owner_company = add_company(session, name=company, domains=["acme.example"])
        owner_company.mailbox_limit = limit
        owner = add_user(session, company=owner_company, email=f"{login}@acme.example")
        port = dovecot.imaps_port if protocol == "imap" else dovecot.pop3s_port
        box = add_mailbox(
            session,
            app.secrets,
            user=owner,
            host=dovecot.host,
            port=port,
            password=password,
            protocol=protocol,
            username=login,
            allow_self_signed=True,
            since=since,
            folders=folders,
            delete_after_fetch=delete_after_fetch,
        )
        return box.id


def seed(
    dovecot: DovecotServer, login: str, folder: str, count: int, *, start: int = 0, **kw: object
) -> list[bytes]:
    """APPEND `count` distinct messages from jo@client.example; returns their bytes."""
    sent = []
    for n in range(start, start + count):
        data = build_message(
            sender="Jo Client <jo@client.example>",
            to=f"{login}@acme.example",
            subject=f"Message {n}",
            body=f"Body {n}\n" + "x" * (n % 7) * 100,
            minutes=n,
            **kw,  # type: ignore[arg-type]
        )
        dovecot.append(login, folder, data)
        sent.append(data)
    return sent


def server_ids(dovecot: DovecotServer, login: str, folder: str) -> dict[int, str]:
    """UID → Message-ID of every message in the folder, read with EXAMINE."""
    conn = dovecot.session(login)
    typ, data = conn.select(f'"{folder}"', readonly=True)
    assert typ == "OK", data
    if int(data[0] or 0) == 0:
        return {}
    typ, data = conn.uid("FETCH", "1:*", "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    assert typ == "OK", data
    result: dict[int, str] = {}
    for item in data:
        if isinstance(item, tuple):
            uid = int(re.search(rb"UID (\d+)", item[0]).group(1))  # type: ignore[union-attr]
            found = _MSGID.search(item[1])
            result[uid] = found.group(1).decode().strip("<>") if found else ""
    return result


def db_ids(app: App, mailbox_id: int, folder: str) -> dict[int, str]:
    """UID → Message-ID of the live (not gone) copies of the folder in the database."""
    with app.sessions() as session:
        rows = session.execute(
            select(MessageCopy.uid, Message.message_id)
            .join(Message, Message.id == MessageCopy.message_id)
            .where(
                MessageCopy.mailbox_id == mailbox_id,
                MessageCopy.folder == folder,
                MessageCopy.gone_at.is_(None),
            )
        ).all()
    assert len(rows) == len({uid for uid, _ in rows}), "two live copies with one UID"
    return {uid: mid for uid, mid in rows}


def message_count(app: App) -> int:
    with app.sessions() as session:
        return session.scalar(select(func.count()).select_from(Message)) or 0


def assert_db_matches_server(
    app: App, dovecot: DovecotServer, login: str, mailbox_id: int, folders: tuple[str, ...]
) -> None:
    """Every message on the server is stored once, as exactly one live copy per place."""
    every: set[str] = set()
    for folder in folders:
        on_server = server_ids(dovecot, login, folder)
        assert db_ids(app, mailbox_id, folder) == on_server, folder
        every.update(on_server.values())
    with app.sessions() as session:
        stored = list(session.scalars(select(Message.message_id)))
    assert len(stored) == len(set(stored)), "a message was stored twice"
    assert every <= set(stored)


def through(app: App, mailbox_id: int, port: int) -> None:
    """Point the mailbox at a plain-text port (the fault proxy's)."""
    with transaction(app.sessions) as session:
        mailbox = session.get(Mailbox, mailbox_id)
        assert mailbox is not None
        mailbox.port, mailbox.security = port, "none"


def health(app: App, mailbox_id: int) -> Mailbox:
    """The mailbox row as the last sync left it (status, error kind, counters)."""
    with app.sessions() as session:
        mailbox = session.get(Mailbox, mailbox_id)
        assert mailbox is not None
        return mailbox


def expunge(dovecot: DovecotServer, login: str, folder: str, uids: list[int]) -> None:
    """A second client deletes messages (STORE \\Deleted + UID EXPUNGE)."""
    conn = dovecot.session(login)
    conn.select(f'"{folder}"')
    spec = ",".join(map(str, uids))
    assert conn.uid("STORE", spec, "+FLAGS.SILENT", "(\\Deleted)")[0] == "OK"
    assert conn.uid("EXPUNGE", spec)[0] == "OK"
    conn.close()


def setup_company(app: App, *, mailbox_users: int = 1) -> list[int]:
    ids = []
    with transaction(app.sessions) as session:
        company = add_company(session, name="Acme", domains=["acme.example"])
        for n in range(mailbox_users):
            user = add_user(session, company=company, email=f"user{n}@acme.example")
            box = add_mailbox(
                session, app.secrets, user=user, host="imap.test", port=993, password="pw-123"
            )
            ids.append(box.id)
        add_record(
            session,
            company=company,
            record_type="contact",
            name="Jo",
            emails=[EmailField("main", "jo@client.example")],
        )
    return ids

"""The foundation, end to end: the `mailroom` command against a real Dovecot.

Every step runs the installed console script in a subprocess, as an operator would:
init, company, user, CSV import, mailbox add, sync, timeline. The timeline counts are
checked against an independent count made from the raw corpus files with a different
parser (compat32 headers and a regular expression), and the server's flags are compared
before and after to prove nothing in the mailbox changed.
"""

from __future__ import annotations

import csv
import json
import os
import re
import sqlite3
import subprocess
import sys
from collections import Counter
from email import message_from_bytes
from email.policy import compat32
from pathlib import Path

import pytest

from mailroom_testing.builders import build_message
from mailroom_testing.dovecot import DovecotServer

MAILROOM = str(Path(sys.executable).with_name("mailroom"))
OWNER = "rod.hayslett@enron.com"
PARTICIPANT_HEADERS = ("from", "to", "cc", "bcc", "reply-to", "sender")
ADDRESS = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


class Cli:
    """Runs `mailroom --data-dir DIR …` and keeps every output for the secrecy check."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.outputs: list[str] = []
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}

    def __call__(
        self, *args: str, stdin: str = "", code: int = 0
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [MAILROOM, "--data-dir", str(self.data_dir), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=120,
        )
        self.outputs += [result.stdout, result.stderr]
        assert result.returncode == code, (args, result.stdout, result.stderr)
        return result

    def json(self, *args: str) -> object:
        return json.loads(self(*args, "--json").stdout)


def participants(raw: bytes) -> tuple[str | None, set[str]]:
    """Independent reading of a message: its Message-ID and every participant address."""
    msg = message_from_bytes(raw, policy=compat32)
    found: set[str] = set()
    for name in PARTICIPANT_HEADERS:
        for value in msg.get_all(name) or []:
            found.update(a.lower() for a in ADDRESS.findall(str(value)))
    mid = msg.get("message-id")
    return (mid.strip() if mid else None), found


def counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("messages", "message_copies", "message_links", "message_addresses")
        }


def folder_states(db: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT name, uidvalidity, last_uid FROM folder_states ORDER BY name"
        ).fetchall()


@pytest.fixture
def seeded(dovecot: DovecotServer, imap_user: tuple[str, str], corpus: Path):  # type: ignore[no-untyped-def]
    """A Dovecot user holding one Enron custodian's inbox, some of it also in Sent."""
    user, password = imap_user
    files = sorted((corpus / "conversations/enron/hayslett-r").rglob("*.eml"))
    assert len(files) > 200
    inbox = [f.read_bytes() for f in files]
    for n, data in enumerate(inbox):
        dovecot.append(user, "INBOX", data, flags=("\\Seen",) if n % 3 == 0 else ())
    sent = inbox[:5]
    for data in sent:
        dovecot.append(user, "Sent", data, flags=("\\Seen",))
    return user, password, inbox + sent


def test_a_mailbox_synced_into_timelines_end_to_end(
    dovecot: DovecotServer,
    seeded,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    user, password, raws = seeded
    cli = Cli(tmp_path / "data")
    db = tmp_path / "data" / "mailroom.sqlite3"

    # Independent count: distinct Message-IDs per external address in the raw files.
    per_address: dict[str, set[str]] = {}
    senders: Counter[str] = Counter()
    for data in raws:
        mid, people = participants(data)
        assert mid
        subject = str(message_from_bytes(data, policy=compat32).get("subject", ""))
        if "confidential" in subject.lower():
            continue  # the built-in filter never logs mail marked confidential
        for address in people - {OWNER}:
            per_address.setdefault(address, set()).add(mid)
        frm = ADDRESS.findall(str(message_from_bytes(data, policy=compat32).get("from", "")))
        senders.update(a.lower() for a in frm if a.lower() != OWNER)
    contacts = [a for a, _ in senders.most_common(12)]

    cli("init")
    assert (tmp_path / "data" / "secret.key").stat().st_mode & 0o777 == 0o600
    cli("company", "add", "Acme", "--domain", "acme.example")
    cli(
        "user",
        "add",
        OWNER,
        "--company",
        "Acme",
        "--name",
        "Rod",
        "--admin",
        "--password-stdin",
        "--confirm-domain",  # the corpus owner's domain is not the company's
        stdin="a-sign-in-password\n",
    )
    sheet = tmp_path / "contacts.csv"
    with sheet.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Name", "Email", "Company", "Notes"])
        for n, address in enumerate(contacts):
            writer.writerow([f"Contact {n}", address.upper(), "Enron", "from the corpus"])
    out = cli("records", "import", str(sheet), "--company", "Acme", "--type", "contact").stdout
    assert f"{len(contacts)} created" in out

    box = cli(
        "mailbox",
        "add",
        "--user",
        OWNER,
        "--host",
        dovecot.host,
        "--port",
        str(dovecot.imaps_port),
        "--security",
        "ssl",
        "--username",
        user,
        "--password-stdin",
        "--allow-self-signed",
        stdin=password + "\n",
    ).stdout.strip()
    assert box.isdigit()
    tested = cli("mailbox", "test", box).stdout
    assert "INBOX" in tested and "Sent" in tested

    flags_before = {f: dovecot.flags(user, f) for f in ("INBOX", "Sent")}
    first = cli("sync", "--once").stdout
    assert f"{len(raws)} fetched" in first
    assert {f: dovecot.flags(user, f) for f in ("INBOX", "Sent")} == flags_before

    after_first = counts(db)
    assert after_first["message_copies"] == len(raws)
    distinct = {participants(d)[0] for d in raws}
    assert after_first["messages"] == len(distinct)

    records = cli.json("records", "list", "--company", "Acme", "--type", "contact")
    assert isinstance(records, list)
    for record in records:
        (address,) = record["emails"]
        entries = cli.json("timeline", f"contact:{record['id']}")
        assert isinstance(entries, list)
        assert len(entries) == len(per_address.get(address, ())), address
        by_address = cli.json("timeline", address)
        assert by_address == entries
        dates = [e["date"] for e in entries if e["date"]]
        assert all(re.search(r"[+-]\d\d:\d\d$", d) for d in dates)
        for entry in entries:
            assert set(entry) >= {
                "conversation",
                "message_id",
                "date",
                "direction",
                "from",
                "to",
                "cc",
                "subject",
                "records",
                "mailboxes",
            }
            assert f"contact:{record['id']}" in entry["records"]
            assert entry["mailboxes"] == [int(box)]
            assert not entry["message_id"].startswith("<")

    # Nothing new: nothing fetched, nothing written.
    states = folder_states(db)
    again = cli("sync", "--once").stdout
    assert "0 fetched" in again
    assert counts(db) == after_first and folder_states(db) == states

    # Mail appended after the first sync arrives on the next, newest first on the timeline.
    newest = contacts[0]
    dovecot.append(
        user,
        "INBOX",
        build_message(sender=newest, to=OWNER, subject="Fresh news", minutes=60 * 24 * 365 * 30),
    )
    dovecot.append(
        user,
        "Sent",
        build_message(
            sender=OWNER, to=newest, subject="Re: Fresh news", minutes=60 * 24 * 365 * 31
        ),
    )
    assert "2 fetched" in cli("sync", "--once").stdout
    entries = cli.json("timeline", newest)
    assert isinstance(entries, list)
    assert [e["subject"] for e in entries[:2]] == ["Re: Fresh news", "Fresh news"]
    assert [e["direction"] for e in entries[:2]] == ["outbound", "inbound"]
    assert len(entries) == len(per_address[newest]) + 2

    # The same message in INBOX and Sent is one message with two copies.
    with sqlite3.connect(db) as conn:
        doubles = conn.execute(
            "SELECT count(*) FROM (SELECT message_id FROM message_copies GROUP BY message_id "
            "HAVING count(*) = 2)"
        ).fetchone()[0]
    assert doubles >= 5

    # The password is nowhere: not in the database files, not in any output.
    for path in (tmp_path / "data").glob("mailroom.sqlite3*"):
        assert password.encode() not in path.read_bytes()
    assert all(password not in text for text in cli.outputs)


def test_a_wrong_password_gives_a_clear_error_and_changes_nothing(
    dovecot: DovecotServer, imap_user: tuple[str, str], tmp_path: Path
) -> None:
    user, password = imap_user
    dovecot.append(user, "INBOX", build_message(sender="jo@client.example", to="ann@acme.example"))
    cli = Cli(tmp_path / "data")
    cli("init")
    cli("company", "add", "Acme", "--domain", "acme.example")
    cli("user", "add", "ann@acme.example", "--company", "Acme")
    wrong = "not-" + password
    add = (
        "mailbox",
        "add",
        "--user",
        "ann@acme.example",
        "--host",
        dovecot.host,
        "--port",
        str(dovecot.imap_port),
        "--security",
        "starttls",
        "--username",
        user,
        "--password-stdin",
        "--allow-self-signed",
    )
    # A wrong password is refused when connecting (it logs in before saving) ...
    refused = cli(*add, stdin=wrong + "\n", code=2)
    assert "refused the user name or password" in refused.stderr
    assert cli.json("mailbox", "list") == []
    # ... so the stored password turns wrong the way it does in life: changed at the provider.
    box = cli(*add, stdin=password + "\n").stdout.strip()
    dovecot.add_user(user, "changed-" + password)
    before = counts(tmp_path / "data" / "mailroom.sqlite3")
    failed = cli("sync", "--once", "--mailbox", box, code=2)
    assert "refused the user name or password" in failed.stderr
    assert "app password" in failed.stderr
    assert cli("mailbox", "test", box, code=2).stderr
    assert counts(tmp_path / "data" / "mailroom.sqlite3") == before
    (row,) = cli.json("mailbox", "list")  # type: ignore[misc]
    assert row["status"] == "error" and "refused" in row["last_error"]
    assert all(secret not in text for text in cli.outputs for secret in (wrong, password))


def test_an_untrusted_certificate_is_refused_unless_allowed(
    dovecot: DovecotServer, imap_user: tuple[str, str], tmp_path: Path
) -> None:
    user, password = imap_user
    cli = Cli(tmp_path / "data")
    cli("init")
    cli("company", "add", "Acme", "--domain", "acme.example")
    cli("user", "add", "ann@acme.example", "--company", "Acme")
    add = (
        "mailbox",
        "add",
        "--user",
        "ann@acme.example",
        "--host",
        dovecot.host,
        "--port",
        str(dovecot.imaps_port),
        "--username",
        user,
        "--password-stdin",
    )
    # Connecting logs in before saving: the untrusted certificate refuses the add itself.
    refused = cli(*add, stdin=password + "\n", code=2)
    assert "--allow-self-signed" in refused.stderr
    assert cli.json("mailbox", "list") == []
    box = cli(*add, "--allow-self-signed", stdin=password + "\n").stdout.strip()
    assert "INBOX" in cli("mailbox", "test", box).stdout


def test_usage_errors_exit_1_and_unknown_records_too(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "data")
    cli("records", "list", code=1)
    cli("records", "list", "--company", "Nobody", code=1)
    cli("init")
    cli("company", "add", "Acme", "--domain", "acme.example")
    cli("timeline", "contact:999", code=1)
    cli(
        "records",
        "import",
        str(tmp_path / "missing.csv"),
        "--company",
        "Acme",
        "--type",
        "contact",
        code=1,
    )
    cli("records", "add", "--company", "Acme", "--type", "planet", "--name", "X", code=1)

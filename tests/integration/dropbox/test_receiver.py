"""The drop address: a real aiosmtpd receiver started by Mailroom, smtplib as the client."""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from mailroom.app import App
from mailroom.cli import main
from mailroom.crm.companies import add_company, add_user, get_company
from mailroom.crm.records import EmailField, add_record
from mailroom.crm.timeline import timeline_entries
from mailroom.db.engine import transaction
from mailroom.db.models import Message, Record
from mailroom.db.outbox_models import DropQuarantine
from mailroom.dropbox.server import DropboxServer, start_dropbox_server
from mailroom.dropbox.tokens import drop_address, ensure_token
from mailroom.mailboxes.store import add_mailbox
from mailroom_testing.builders import build_message
from tests.conftest_web import Tenant, sign_in


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def drop(sqlite_app: App, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[App, str, int]]:
    monkeypatch.setenv("MAILROOM_DROPBOX_DOMAIN", "drop.acme.example")
    with transaction(sqlite_app.sessions) as session:
        company = add_company(session, name="Acme", domains=["acme.example"])
        ann = add_user(session, company=company, email="ann@acme.example", name="Ann")
        add_mailbox(session, sqlite_app.secrets, user=ann, host="imap.test", port=993, password="x")
        add_record(
            session,
            company=company,
            record_type="contact",
            name="Jo",
            emails=[EmailField("main", "jo@client.example")],
        )
        address = drop_address(ensure_token(session, company=company).token)
    server: DropboxServer = start_dropbox_server(sqlite_app, "127.0.0.1", free_port())
    try:
        yield sqlite_app, address, server.port
    finally:
        server.stop()


def deliver(port: int, sender: str, rcpt: str, data: bytes, *, tls: bool = True) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("starttls") and client.has_extn("size")
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            client.starttls(context=ctx)
            client.ehlo()
        client.sendmail(sender, [rcpt], data)


def jo_timeline(app: App) -> list[tuple[str, str | None, str]]:
    with app.sessions() as session:
        jo = session.scalars(select(Record).where(Record.type == "contact")).one()
        return [
            (e.direction, e.from_, e.message_id) for e in timeline_entries(session, records=[jo])
        ]


def test_a_bcc_copy_is_logged_as_outbound_on_the_record(drop: tuple[App, str, int]) -> None:
    app, address, port = drop
    data = build_message(
        sender="Ann <ann@acme.example>", to="jo@client.example", message_id="<bcc-1@acme.example>"
    )
    deliver(port, "ann@acme.example", address, data)
    assert jo_timeline(app) == [("outbound", "ann@acme.example", "bcc-1@acme.example")]


def test_an_inline_forward_is_logged_as_the_original(drop: tuple[App, str, int]) -> None:
    app, address, port = drop
    body = (
        "FYI, see below.\n\n---------- Forwarded message ---------\n"
        "From: Jo Client <jo@client.example>\nDate: Mon, Jan 5, 2026 at 9:30 AM\n"
        "Subject: Quote request\nTo: Ann <ann@acme.example>\n\n"
        "Could you send a quote for 40 widgets?\n"
    )
    data = build_message(sender="ann@acme.example", to=address, subject="Fwd: Quote", body=body)
    deliver(port, "ann@acme.example", address, data)
    ((direction, sender, _),) = jo_timeline(app)
    assert (direction, sender) == ("inbound", "jo@client.example")
    with app.sessions() as session:
        message = session.scalars(select(Message)).one()
        assert message.subject == "Quote request"
        assert "40 widgets" in message.text_body and "FYI" not in message.text_body
        assert message.date_utc is not None and message.date_utc.day == 5


def test_an_attached_forward_is_logged_as_the_original_with_its_id(
    drop: tuple[App, str, int],
) -> None:
    app, address, port = drop
    original = build_message(
        sender="Jo Client <jo@client.example>",
        to="ann@acme.example",
        message_id="<orig-7@client.example>",
        body="The widgets arrived broken.",
    )
    outer = EmailMessage()
    outer["From"], outer["To"], outer["Subject"] = "ann@acme.example", address, "Fwd: widgets"
    outer["Message-ID"] = make_msgid(domain="acme.example")
    outer.set_content("Forwarding this.")
    outer.add_attachment(message_from_bytes(original, policy=policy.default))
    deliver(port, "ann@acme.example", address, outer.as_bytes())
    assert jo_timeline(app) == [("inbound", "jo@client.example", "orig-7@client.example")]


def test_an_unknown_token_is_refused_at_rcpt(drop: tuple[App, str, int]) -> None:
    app, address, port = drop
    token = address.split("+")[1].split("@")[0]
    wrong = "log+" + ("0" if token[0] != "0" else "1") + token[1:] + "@drop.acme.example"
    for rcpt in (wrong, "log+00000@drop.acme.example", "ann@drop.acme.example"):
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            deliver(port, "ann@acme.example", rcpt, build_message(sender="ann@acme.example"))
        assert refused.value.recipients[rcpt][0] == 550
    with app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 0


def test_strangers_are_refused_or_quarantined_as_the_company_chose(
    drop: tuple[App, str, int],
) -> None:
    app, address, port = drop
    data = build_message(sender="spam@elsewhere.example", to="jo@client.example")
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        deliver(port, "spam@elsewhere.example", address, data, tls=False)
    with transaction(app.sessions) as session:
        ensure_token(session, company=get_company(session, "Acme"), unknown_senders="quarantine")
    deliver(port, "spam@elsewhere.example", address, data)
    with app.sessions() as session:
        (kept,) = session.scalars(select(DropQuarantine))
        assert kept.header_from == "spam@elsewhere.example"
        assert session.scalar(select(func.count()).select_from(Message)) == 0


def test_company_dropbox_prints_the_private_address(
    drop: tuple[App, str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    app, address, _ = drop
    assert main(["--data-dir", str(app.settings.data_dir), "company", "dropbox", "Acme"]) == 0
    assert capsys.readouterr().out.strip() == address
    assert address.startswith("log+") and address.endswith("@drop.acme.example")


def test_serve_starts_and_stops_the_receiver_and_the_outbox(sqlite_app: App) -> None:
    from mailroom.services.mail_services import start_mail_services

    port = free_port()
    services = start_mail_services(sqlite_app, host="127.0.0.1", smtp_port=port)
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            assert client.ehlo()[0] == 250 and client.has_extn("starttls")
    finally:
        services.stop()
    with pytest.raises(OSError):
        smtplib.SMTP("127.0.0.1", port, timeout=2)


def test_the_printed_address_reaches_the_receiver_when_the_machine_is_named_localhost(
    sqlite_app: App,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """socket.getfqdn() is often `localhost`: the printed `log+TOKEN@localhost` used to be
    refused with 550 by Mailroom's own receiver (issue 11 item 15)."""
    monkeypatch.delenv("MAILROOM_DROPBOX_DOMAIN", raising=False)
    monkeypatch.setattr(socket, "getfqdn", lambda name="": "localhost")  # the machine's name
    monkeypatch.setenv("MAILROOM_SECRET_KEY", sqlite_app.settings.secret_key_b64 or "")
    with transaction(sqlite_app.sessions) as session:
        company = add_company(session, name="Acme", domains=["acme.example"])
        add_user(session, company=company, email="ann@acme.example", name="Ann")
    assert (
        main(["--data-dir", str(sqlite_app.settings.data_dir), "company", "dropbox", "Acme"]) == 0
    )
    out, err = capsys.readouterr()
    address = out.strip()
    assert address.startswith("log+") and address.endswith("@localhost")
    assert "'localhost' (this machine's name) has no dot" in err
    assert "Set MAILROOM_DROPBOX_DOMAIN to a domain" in " ".join(err.split())

    with caplog.at_level("WARNING", logger="mailroom.dropbox.server"):
        server = start_dropbox_server(sqlite_app, "127.0.0.1", free_port())
    try:
        assert any(
            "has no dot" in r.getMessage() and "MAILROOM_DROPBOX_DOMAIN" in r.getMessage()
            for r in caplog.records
        ), caplog.text  # `serve` warns at start
        token = address.split("+")[1].split("@")[0]
        for n, rcpt in enumerate((address, f"LOG+{token}@Other.Example", f"log+{token}@mx")):
            data = build_message(
                sender="ann@acme.example", to="jo@client.example", message_id=f"d{n}@acme.example"
            )
            deliver(server.port, "ann@acme.example", rcpt, data)
    finally:
        server.stop()
    with sqlite_app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 3


def test_domain_problem_names_a_bare_or_unresolvable_drop_domain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mailroom.dropbox.tokens import domain_problem

    monkeypatch.setenv("MAILROOM_DROPBOX_DOMAIN", "drop.acme.example")
    assert domain_problem(resolve=False) is None
    problem = domain_problem()  # .example never resolves
    assert problem is not None and "does not resolve" in problem
    assert "MAILROOM_DROPBOX_DOMAIN" in problem
    monkeypatch.setenv("MAILROOM_DROPBOX_DOMAIN", "localhost")
    assert "has no dot" in (domain_problem(resolve=False) or "")


def test_the_admin_page_says_how_to_set_the_drop_domain(
    web: TestClient, two_tenants: tuple[Tenant, Tenant], monkeypatch: pytest.MonkeyPatch
) -> None:
    alpha, _ = two_tenants
    monkeypatch.setenv("MAILROOM_DROPBOX_DOMAIN", "localhost")
    sign_in(web, alpha.admin)
    page = web.get("/admin/dropbox").text
    assert "@localhost</code>" in page
    assert 'id="drop-domain-problem"' in page and "has no dot" in page
    assert "Set MAILROOM_DROPBOX_DOMAIN to a domain" in page

"""Filters: internal, blocklist, bulk, confidential, participation (issue 5, points 7-11).

Each test would fail without its filter: the message would be linked instead of skipped.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mailroom.app import App
from mailroom.crm.companies import get_company
from mailroom.crm.records import EmailField, add_record
from mailroom.db.engine import transaction
from mailroom.db.models import Mailbox, Message, MessageAddress
from mailroom.errors import Conflict, NotFound
from mailroom.mail.parse import parse_message
from mailroom.matching.blocklist import add_entry, list_entries, remove_entry
from mailroom.matching.classify import automation_reason
from mailroom.matching.policy import set_participation, update_settings
from tests.helpers.matching_kit import ingest, links_of, mail, setup, skip_of


@pytest.fixture
def acme(sqlite_app: App) -> App:
    setup(sqlite_app)
    with transaction(sqlite_app.sessions) as session:
        company = get_company(session, "Acme")
        for name, address in [("Jo", "jo@client.example"), ("Sam", "sam@sub.spam.example")]:
            add_record(
                session,
                company=company,
                record_type="contact",
                name=name,
                emails=[EmailField("main", address)],
            )
    return sqlite_app


def box(app: App, user: str) -> int:
    with app.sessions() as session:
        found = session.scalar(select(Mailbox.id).where(Mailbox.address == user))
        assert found is not None
        return found


def test_internal_only_mail_is_skipped_and_keeps_no_content(acme: App) -> None:
    ingest(
        acme,
        box(acme, "ann@acme.example"),
        mail(
            sender="ann@acme.example", to="bob@acme.example", body="salary talk", message_id="in@x"
        ),
    )
    assert skip_of(acme, "in@x") == "filter:internal"
    with acme.sessions() as session:
        row = session.scalar(select(Message).where(Message.message_id == "in@x"))
        assert row is not None and row.text_body == "" and row.raw_sha256 is None
        assert (
            session.scalar(select(MessageAddress.id).where(MessageAddress.message_id == row.id))
            is None
        )


def test_the_company_domains_are_on_the_blocklist_from_the_start(acme: App) -> None:
    with acme.sessions() as session:
        company = get_company(session, "Acme")
        assert [(v.entry, v.builtin) for v in list_entries(session, company=company)] == [
            ("@acme.example", True)
        ]
        with pytest.raises(Conflict):
            add_entry(session, company=company, entry="@ACME.example")


def test_a_blocked_address_skips_the_mail(acme: App) -> None:
    with transaction(acme.sessions) as session:
        add_entry(session, company=get_company(session, "Acme"), entry="Jo@Client.example")
    ingest(acme, box(acme, "ann@acme.example"), mail(message_id="bl@x"))
    assert skip_of(acme, "bl@x") == "filter:blocklist"
    assert links_of(acme, "bl@x") == {}


def test_a_blocked_domain_covers_its_subdomains_and_can_be_removed(acme: App) -> None:
    ann = box(acme, "ann@acme.example")
    with transaction(acme.sessions) as session:
        add_entry(session, company=get_company(session, "Acme"), entry="@spam.example")
    ingest(acme, ann, mail(sender="sam@sub.spam.example", message_id="sd1@x"))
    with transaction(acme.sessions) as session:
        remove_entry(session, company=get_company(session, "Acme"), entry="@spam.example")
    ingest(acme, ann, mail(sender="sam@sub.spam.example", message_id="sd2@x"))
    assert skip_of(acme, "sd1@x") == "filter:blocklist"
    assert skip_of(acme, "sd2@x") is None and links_of(acme, "sd2@x")


def test_a_users_blocklist_applies_only_to_that_users_mailboxes(acme: App) -> None:
    with transaction(acme.sessions) as session:
        add_entry(
            session,
            company=get_company(session, "Acme"),
            entry="jo@client.example",
            user_email="bob@acme.example",
        )
        with pytest.raises(NotFound):
            add_entry(
                session,
                company=get_company(session, "Acme"),
                entry="x@y.example",
                user_email="nobody@acme.example",
            )
    ingest(acme, box(acme, "bob@acme.example"), mail(to="bob@acme.example", message_id="u1@x"))
    ingest(acme, box(acme, "ann@acme.example"), mail(message_id="u2@x"))
    assert skip_of(acme, "u1@x") == "filter:blocklist"
    assert skip_of(acme, "u2@x") is None


def test_the_blocklist_never_blocks_the_mailboxs_own_aliases(acme: App) -> None:
    with transaction(acme.sessions) as session:
        add_entry(session, company=get_company(session, "Acme"), entry="@acme-mail.example")
    ingest(
        acme,
        box(acme, "ann@acme.example"),
        mail(to="ann.sales@acme-mail.example", message_id="al@x"),
    )
    assert skip_of(acme, "al@x") is None
    assert links_of(acme, "al@x")


BULK_HEADERS = [
    ([("List-Id", "<news.vendor.example>")], "List-Id"),
    ([("List-Unsubscribe", "<mailto:leave@vendor.example>")], "List-Unsubscribe"),
    ([("Precedence", "bulk")], "Precedence: bulk"),
    ([("Precedence", "junk")], "Precedence: junk"),
    ([("Auto-Submitted", "auto-replied")], "Auto-Submitted: auto-replied"),
    ([("X-Autoreply", "yes")], "X-Autoreply"),
]


@pytest.mark.parametrize(("headers", "reason"), BULK_HEADERS)
def test_list_and_automatic_mail_is_skipped_as_bulk(
    acme: App, headers: list[tuple[str, str]], reason: str
) -> None:
    ingest(acme, box(acme, "ann@acme.example"), mail(headers=headers, message_id="bk@x"))
    assert skip_of(acme, "bk@x") == "filter:bulk"
    assert reason in (automation_reason(parse_message(mail(headers=headers))) or "")


def test_auto_submitted_no_and_plain_mail_are_not_automatic() -> None:
    assert automation_reason(parse_message(mail(headers=[("Auto-Submitted", "no")]))) is None
    assert automation_reason(parse_message(mail())) is None


def test_mailer_daemon_and_delivery_reports_are_automatic() -> None:
    assert "mailer-daemon" in (
        automation_reason(parse_message(mail(sender="MAILER-DAEMON@mx.client.example"))) or ""
    )
    report = mail().replace(
        b"Content-Type: text/plain",
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"',
        1,
    )
    assert "report" in (automation_reason(parse_message(report)) or "")


def test_the_company_switch_logs_bulk_mail(acme: App) -> None:
    with transaction(acme.sessions) as session:
        update_settings(session, company=get_company(session, "Acme"), log_bulk=True)
    ingest(
        acme,
        box(acme, "ann@acme.example"),
        mail(headers=[("Precedence", "list")], message_id="lb@x"),
    )
    assert skip_of(acme, "lb@x") is None
    assert list(links_of(acme, "lb@x").values()) == ["address:main"]


def test_confidential_subjects_are_never_logged_and_the_list_is_editable(acme: App) -> None:
    ann = box(acme, "ann@acme.example")
    ingest(acme, ann, mail(subject="CONFIDENTIAL: merger terms", message_id="cf1@x"))
    with transaction(acme.sessions) as session:
        update_settings(session, company=get_company(session, "Acme"), confidential=["Private"])
    ingest(
        acme,
        ann,
        mail(subject="private matter", message_id="cf2@x"),
        mail(subject="Confidential now allowed", message_id="cf3@x"),
    )
    assert skip_of(acme, "cf1@x") == "filter:confidential"
    assert skip_of(acme, "cf2@x") == "filter:confidential"
    assert skip_of(acme, "cf3@x") is None
    with acme.sessions() as session:
        row = session.scalar(select(Message).where(Message.message_id == "cf1@x"))
        assert row is not None and row.subject == ""  # not even the subject is kept


def test_participation_policy_logs_only_threads_the_owner_took_part_in(acme: App) -> None:
    bob = box(acme, "bob@acme.example")
    with transaction(acme.sessions) as session:
        set_participation(session, mailbox=session.get(Mailbox, bob), policy="participated")  # type: ignore[arg-type]
    ingest(
        acme,
        bob,
        mail(to="support@acme.example", message_id="pt1@x"),  # bob is not on it
        mail(to="bob@acme.example", message_id="pt2@x"),  # bob is a recipient
        mail(sender="bob@acme.example", to="jo@client.example", message_id="pt3@x"),
        mail(to="support@acme.example", message_id="pt4@x", in_reply_to="pt3@x"),
    )
    assert skip_of(acme, "pt1@x") == "filter:participation"
    assert [skip_of(acme, f"pt{n}@x") for n in (2, 3, 4)] == [None, None, None]


def test_mail_skipped_by_one_mailboxs_policy_is_logged_when_another_mailbox_sees_it(
    acme: App,
) -> None:
    bob = box(acme, "bob@acme.example")
    with transaction(acme.sessions) as session:
        set_participation(session, mailbox=session.get(Mailbox, bob), policy="participated")  # type: ignore[arg-type]
    raw = mail(to="support@acme.example", message_id="rv@x", body="full body")
    ingest(acme, bob, raw)
    assert skip_of(acme, "rv@x") == "filter:participation"
    ingest(acme, box(acme, "ann@acme.example"), raw)
    assert skip_of(acme, "rv@x") is None
    assert list(links_of(acme, "rv@x").values()) == ["address:main"]
    with acme.sessions() as session:
        row = session.scalar(select(Message).where(Message.message_id == "rv@x"))
        assert row is not None and "full body" in row.text_body

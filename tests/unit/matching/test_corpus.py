"""Matching, filters and `why` on real mail from ../shared/corpus: list traffic (linux-mips,
LKML via notmuch), bounces and delivery reports (mime/), and real reply threads."""

from __future__ import annotations

import mailbox
from pathlib import Path

import pytest
from sqlalchemy import select

from mailroom.app import App
from mailroom.crm.companies import get_company
from mailroom.crm.records import EmailField, add_record
from mailroom.db.engine import transaction
from mailroom.db.models import Message, Record
from mailroom.ingest.batch import identity_of
from mailroom.mail.parse import parse_message
from mailroom.matching.classify import automation_reason
from mailroom.matching.manual import link_by_hand
from mailroom.matching.policy import update_settings
from mailroom.matching.why import explain
from tests.helpers.matching_kit import ingest, links_of, setup, skip_of

SLICE = 120
FILTER_NAMES = {"internal", "blocklist", "bulk", "confidential", "participation"}
REPORTS = [
    "postal-mime/bounce.eml",
    "postal-mime/arf.eml",
    "mailgun-flanker/disposition-notification.eml",
    "mailgun-flanker/bounce/zed.eml",
    "mailgun-flanker/bounce/delayed.eml",
    "mailgun-flanker/bounce/delayed-broken.eml",
    "mailgun-flanker/bounce/no-mx.eml",
    "mailgun-flanker/bounce/gmail-no-dns.eml",
    "mailgun-flanker/bounce/broken-mime.eml",
    "mikel-mail/multipart_report_emails/report_422.eml",
    "mikel-mail/multipart_report_emails/report_530.eml",
    "mikel-mail/multipart_report_emails/multi_address_bounce1.eml",
    "mikel-mail/multipart_report_emails/multipart_report_multiple_status.eml",
]


def mips(corpus: Path, month: str = "2006-03", limit: int = SLICE) -> list[bytes]:
    box = mailbox.mbox(corpus / "conversations" / "linux-mips" / f"linux-mips-{month}.mbox")
    out = []
    for key in box.iterkeys():
        out.append(box.get_bytes(key))
        if len(out) >= limit:
            break
    return out


def senders(raws: list[bytes], count: int) -> list[str]:
    seen: dict[str, int] = {}
    for raw in raws:
        sender = parse_message(raw).from_address
        if sender:
            seen[sender] = seen.get(sender, 0) + 1
    return sorted(seen, key=lambda s: -seen[s])[:count]


def add_contacts(app: App, addresses: list[str]) -> None:
    with transaction(app.sessions) as session:
        company = get_company(session, "Acme")
        for address in addresses:
            add_record(
                session,
                company=company,
                record_type="contact",
                name=address,
                emails=[EmailField("main", address)],
            )


def test_list_mail_from_linux_mips_is_skipped_as_bulk_and_why_says_so(
    sqlite_app: App, corpus: Path
) -> None:
    ids = setup(sqlite_app)
    raws = mips(corpus)
    add_contacts(sqlite_app, senders(raws, 5))
    result = ingest(sqlite_app, ids.ann_box, *raws)
    assert result.messages == len({identity_of(parse_message(r)) for r in raws})
    assert result.links == 0 and result.skipped == result.messages
    with sqlite_app.sessions() as session:
        for message_id in session.scalars(select(Message.message_id)):
            answer = explain(session, message_id=message_id)
            assert answer.to_json() == {
                "message_id": message_id,
                "links": [],
                "skipped_by": "filter:bulk",
            }
            assert answer.detail.startswith(("Precedence: bulk", "X-Mailing-List:", "List-"))


def test_with_bulk_logged_real_list_mail_links_senders_and_follows_threads(
    sqlite_app: App, corpus: Path
) -> None:
    ids = setup(sqlite_app)
    with transaction(sqlite_app.sessions) as session:
        update_settings(session, company=get_company(session, "Acme"), log_bulk=True)
    raws = mips(corpus)
    parsed = [parse_message(r) for r in raws]
    replied = {}
    for p in parsed:
        if p.in_reply_to:
            replied[p.in_reply_to] = replied.get(p.in_reply_to, 0) + 1
    root_index = next(i for i, p in enumerate(parsed) if replied.get(p.message_id, 0) >= 2)
    root = parsed[root_index]
    top = senders(raws, 3)
    add_contacts(sqlite_app, top)
    ingest(sqlite_app, ids.ann_box, raws[root_index])
    with transaction(sqlite_app.sessions) as session:
        case = add_record(
            session, company=get_company(session, "Acme"), record_type="case", name=root.subject
        )
        message = session.scalar(select(Message).where(Message.message_id == root.message_id))
        assert message is not None
        link_by_hand(session, message=message, record=case)
        case_ref = case.ref
    ingest(sqlite_app, ids.ann_box, *raws)
    replies = [p for p in parsed if p.in_reply_to == root.message_id]
    assert len(replies) >= 2
    for reply in replies:
        assert links_of(sqlite_app, reply.message_id).get(case_ref) == "thread"
    with sqlite_app.sessions() as session:
        contact_ids = {
            r.emails[0].address: r.ref
            for r in session.scalars(select(Record).where(Record.type == "contact"))
        }
    for p in parsed:
        expected = {contact_ids[a.address] for _, a in p.participants() if a.address in contact_ids}
        found = {ref for ref in links_of(sqlite_app, p.message_id) if ref.startswith("contact:")}
        assert found == expected, p.message_id


def test_lkml_list_mail_from_notmuch_is_recognised_as_bulk(corpus: Path) -> None:
    files = sorted((corpus / "conversations" / "notmuch-corpora" / "lkml").glob("*.eml"))
    assert files
    for path in files:
        data = path.read_bytes()
        if b"\nList-ID:" in data or data.startswith(b"List-ID:"):
            assert automation_reason(parse_message(data)), path.name


@pytest.mark.parametrize("name", REPORTS)
def test_real_bounces_and_reports_are_skipped_as_bulk(
    sqlite_app: App, corpus: Path, name: str
) -> None:
    ids = setup(sqlite_app)
    data = (corpus / "mime" / name).read_bytes()
    parsed = parse_message(data)
    add_contacts(sqlite_app, [a.address for _, a in parsed.participants()][:3])
    ingest(sqlite_app, ids.ann_box, data)
    assert skip_of(sqlite_app, parsed.message_id) == "filter:bulk"
    assert links_of(sqlite_app, parsed.message_id) == {}


def test_why_explains_every_stored_message_of_a_mixed_corpus_sample(
    sqlite_app: App, corpus: Path
) -> None:
    ids = setup(sqlite_app)
    replies = sorted((corpus / "mime" / "mailgun-talon").glob("*.eml"))
    lkml = sorted((corpus / "conversations" / "notmuch-corpora" / "default").glob("*.eml"))[:40]
    raws = [p.read_bytes() for p in [*replies, *lkml]]
    raws += [(corpus / "mime" / n).read_bytes() for n in REPORTS]
    people = {a.address for r in raws for _, a in parse_message(r).participants()}
    add_contacts(sqlite_app, sorted(people)[::3])
    ingest(sqlite_app, ids.ann_box, *raws)
    seen = {"linked": 0, "skipped": 0, "unmatched": 0}
    with sqlite_app.sessions() as session:
        for message_id in session.scalars(select(Message.message_id)):
            answer = explain(session, message_id=message_id)
            shape = answer.to_json()
            assert set(shape) == {"message_id", "links", "skipped_by"}
            if shape["skipped_by"]:
                kind, _, name = shape["skipped_by"].partition(":")
                assert kind == "filter" and name in FILTER_NAMES and answer.detail
                assert shape["links"] == []
                seen["skipped"] += 1
            elif shape["links"]:
                assert all(link["reason"].startswith("address:") for link in shape["links"])
                seen["linked"] += 1
            else:
                assert "no record holds an external participant" in answer.lines()[-1]
                seen["unmatched"] += 1
    assert all(seen.values()), seen

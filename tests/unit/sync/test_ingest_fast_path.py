"""The sync's fast ingest path: headers first, bodies on read; mail that is in no mailbox.

The engine ingests with `defer_bodies` (sync/folders.py); these tests drive the same
`ingest_batch` with it on, and check that links, skips and rule outcomes are those of the
complete parse, and that bodies and attachments appear, once, when first read.
"""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import func, select

from mailroom.app import App
from mailroom.crm.companies import add_company, add_user, get_company
from mailroom.crm.records import EmailField, add_record
from mailroom.db.engine import transaction
from mailroom.db.models import Message, MessageCopy
from mailroom.dropbox.service import receive
from mailroom.dropbox.tokens import ensure_token
from mailroom.mail.parse import parse_headers, parse_message
from mailroom.matching.rulebook import add_rule
from tests.helpers.matching_kit import fast_ingest, links_of, mail, setup, skip_of, stored


def test_the_header_parse_decodes_headers_as_the_complete_parse_does() -> None:
    data = mail(
        sender="=?utf-8?q?J=C3=B6_Client?= <jo@client.example>",
        subject="Quote =?iso-8859-1?q?f=FCr?= you",
        headers=[("List-Id", "<news.client.example>"), ("X-Source", "webform")],
        attachment=b"%PDF-1.4",
    )
    fast, full = parse_headers(data), parse_message(data)
    assert fast.subject == full.subject == "Quote für you"
    assert (fast.from_, fast.message_id) == (full.from_, full.message_id)
    assert [h for h in full.headers if h[0].lower() in {"subject", "list-id", "x-source"}] == [
        h for h in fast.headers if h[0].lower() in {"subject", "list-id", "x-source"}
    ]
    assert fast.text == "" and fast.attachments == () and full.attachments


def test_a_rule_on_the_body_or_a_structured_header_reads_the_complete_message(
    sqlite_app: App,
) -> None:
    kit = setup(sqlite_app)
    with transaction(sqlite_app.sessions) as session:
        company = get_company(session, "Acme")
        add_rule(
            session,
            company=company,
            name="no-widgets",
            action="ignore",
            conditions={"body_contains": "widgets"},
        )
        add_rule(
            session,
            company=company,
            name="no-jo",
            action="ignore",
            conditions={"header_matches": "From: ^Jo Client"},
        )
        add_rule(
            session,
            company=company,
            name="attached",
            action="create-lead",
            conditions={"has_attachment": True},
        )
    fast_ingest(
        sqlite_app,
        kit.ann_box,
        mail(sender="Al <al@client.example>", message_id="r1@x", body="Ten widgets"),
        mail(message_id="r2@x", body="Hello"),
        mail(sender="Al <al@client.example>", message_id="r3@x", attachment=b"%PDF-1.4"),
        mail(sender="Al <al@client.example>", message_id="r4@x", in_reply_to="r3@x"),
    )
    assert skip_of(sqlite_app, "r1@x") == "rule:no-widgets"
    assert skip_of(sqlite_app, "r2@x") == "rule:no-jo"
    assert links_of(sqlite_app, "r3@x") == {"lead:1": "rule:attached"}
    # the lead made by r3's rule is linked to the next message of the same batch
    assert links_of(sqlite_app, "r4@x") == {"lead:1": "address:main"}
    # r3 was parsed in full for its rule, so its bodies were stored with it
    assert stored(sqlite_app, "r3@x")[0] and stored(sqlite_app, "r3@x")[2] == 1


def test_drop_box_mail_is_logged_for_a_company_with_no_mailbox(sqlite_app: App) -> None:
    with transaction(sqlite_app.sessions) as session:
        company = add_company(session, name="Solo", domains=["solo.example"])
        add_user(session, company=company, email="sam@solo.example")
        add_record(
            session,
            company=company,
            record_type="contact",
            name="Jo",
            emails=[EmailField("main", "jo@client.example")],
        )
        token = ensure_token(session, company=company)
        outcome = receive(
            session,
            token=token,
            envelope_from="sam@solo.example",
            data=mail(sender="sam@solo.example", to="jo@client.example", message_id="d1@x"),
            blobs=sqlite_app.blobs,
        )
    assert outcome.status == "logged" and outcome.message_id is not None
    assert links_of(sqlite_app, "d1@x") == {"contact:1": "address:main"}
    with sqlite_app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(MessageCopy)) == 0


def test_every_raw_blob_is_whole_on_disk_when_a_batch_returns(sqlite_app: App) -> None:
    """Blob writes run in the background (mail/blobs.py) but end before ingest returns."""
    kit = setup(sqlite_app)
    messages = [mail(message_id=f"b{n}@x", body="x" * (20_000 + n)) for n in range(30)]
    fast_ingest(sqlite_app, kit.ann_box, *messages)
    with sqlite_app.sessions() as session:
        digests = set(session.scalars(select(Message.raw_sha256)))
    assert len(digests) == 30 and None not in digests
    for digest in digests:
        assert digest is not None
        data = sqlite_app.blobs.path_for(digest).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest


def test_a_failed_blob_write_fails_the_batch_and_stores_no_row(sqlite_app: App) -> None:
    kit = setup(sqlite_app)
    data = mail(message_id="nowhere@x")
    digest = hashlib.sha256(data).hexdigest()
    blocker = sqlite_app.blobs.root / digest[:2]
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_bytes(b"a file where the blob's folder must go")
    with pytest.raises(OSError):
        fast_ingest(sqlite_app, kit.ann_box, data)
    with sqlite_app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 0

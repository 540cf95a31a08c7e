"""Parsing raw messages: built messages (unit and property tests) and the shared corpus.

The corpus test reads $MAILROOM_CORPUS (default: ../shared/corpus beside the repository):
every file under mime/ and conversations/notmuch-corpora/, every message of every mbox
file, and a fixed sample of the Enron maildir.
"""

from __future__ import annotations

import mailbox
import os
import re
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from email import policy
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailroom.mail import parse as parse_module
from mailroom.mail.message import Address, ParsedMessage
from mailroom.mail.parse import STRUCTURED_HEADERS, parse_date, parse_headers, parse_message

FINGERPRINT = re.compile(r"fp-[0-9a-f]{32}@mailroom\.invalid")
SHARED_FIELDS = ("message_id", "from_", "to", "cc", "subject")


def as_bytes(msg: EmailMessage, linesep: str = "\r\n") -> bytes:
    return msg.as_bytes(policy=msg.policy.clone(linesep=linesep))


def simple_message(**headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = headers.pop("From", "Jörg Müller <Joerg@Bücher.example>")
    msg["To"] = headers.pop("To", "Alice <alice@example.com>, bob@example.org")
    msg["Subject"] = headers.pop("Subject", "Grüße aus Köln \u2013 a subject long enough to fold")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content("Hello,\nthis is the body.\n")
    return msg


def assert_paths_agree(full: ParsedMessage, fast: ParsedMessage) -> None:
    for name in (*SHARED_FIELDS, "date", "in_reply_to", "references", "message_id_generated"):
        assert getattr(full, name) == getattr(fast, name), name


# --- built messages -----------------------------------------------------------------------


def test_plain_message() -> None:
    msg = simple_message(
        Message_ID="<abc.123@mail.example>",
        Date="Mon, 02 Jan 2006 10:00:00 +0200",
        Cc='"Doe, John" <JOHN@example.net>',
    )
    raw = as_bytes(msg)
    parsed = parse_message(raw)
    assert parsed.parse_error is None
    assert parsed.message_id == "abc.123@mail.example"
    assert not parsed.message_id_generated
    assert parsed.date == datetime(2006, 1, 2, 10, tzinfo=timezone(timedelta(hours=2)))
    assert parsed.subject == "Grüße aus Köln \u2013 a subject long enough to fold"
    assert parsed.from_ == (Address("joerg@xn--bcher-kva.example", "Jörg Müller"),)
    assert parsed.to == (Address("alice@example.com", "Alice"), Address("bob@example.org"))
    assert parsed.cc == (Address("john@example.net", "Doe, John"),)
    assert parsed.text == "Hello,\nthis is the body.\n"
    assert parsed.html == ""
    assert parsed.attachments == ()
    assert ("Subject", parsed.subject) in parsed.headers
    assert parsed.size == len(raw)
    assert_paths_agree(parsed, parse_headers(raw))


def test_fast_path_reads_headers_only_and_leaves_structured_ones_to_the_fields() -> None:
    raw = as_bytes(simple_message(Message_ID="<x@y>"))
    fast, full = parse_headers(raw), parse_message(raw)
    assert fast.message_id == "x@y"
    assert (fast.text, fast.html, fast.attachments) == ("", "", ())
    assert fast.size == len(raw)
    names = {n.lower() for n, _ in fast.headers}
    assert "subject" in names and names.isdisjoint(STRUCTURED_HEADERS)
    assert [h for h in full.headers if h[0].lower() in names] == list(fast.headers)


def test_alternative_related_and_attachments() -> None:
    msg = simple_message(Message_ID="<m@x>")
    msg.add_alternative("<p>Hello <img src='cid:logo@x'></p>", subtype="html")
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    msg.get_payload()[1].add_related(png, "image", "png", cid="<logo@x>")
    pdf = b"%PDF-1.4\n" + b"\x00\xff" * 500
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename="Rapport été.pdf")
    msg.add_attachment("BEGIN:VCALENDAR\nEND:VCALENDAR\n", subtype="calendar")
    parsed = parse_message(as_bytes(msg))
    assert parsed.text == "Hello,\nthis is the body.\n"
    assert parsed.html == "<p>Hello <img src='cid:logo@x'></p>\n"
    image, document, calendar = parsed.attachments
    assert (image.content_type, image.content_id, image.data, image.size) == (
        "image/png",
        "logo@x",
        png,
        len(png),
    )
    assert image.inline
    assert (document.filename, document.content_type, document.data) == (
        "Rapport été.pdf",
        "application/pdf",
        pdf,
    )
    assert not document.inline
    assert calendar.content_type == "text/calendar"
    assert calendar.data.replace(b"\r\n", b"\n") == b"BEGIN:VCALENDAR\nEND:VCALENDAR\n"


def test_attachment_names_are_plain_file_names() -> None:
    msg = simple_message()
    msg.add_attachment(
        b"x", maintype="application", subtype="octet-stream", filename="a/b\\..\\evil.sh"
    )
    msg.add_attachment(b"y", maintype="application", subtype="octet-stream")
    first, second = parse_message(as_bytes(msg)).attachments
    assert first.filename == "evil.sh"
    assert second.filename.startswith("attachment-2")


def test_enclosed_message_is_an_eml_attachment() -> None:
    inner = simple_message(Subject="The inner one", Message_ID="<inner@x>")
    outer = simple_message(Subject="Fwd: The inner one", Message_ID="<outer@x>")
    outer.add_attachment(inner)
    parsed = parse_message(as_bytes(outer))
    (attachment,) = parsed.attachments
    assert attachment.content_type == "message/rfc822"
    assert attachment.filename.endswith(".eml")
    assert parsed.message_id == "outer@x"
    assert parse_message(attachment.data).subject == "The inner one"
    assert parse_message(attachment.data).message_id == "inner@x"


def test_missing_message_id_gets_a_stable_fingerprint() -> None:
    msg = simple_message(Date="Tue, 03 Jan 2006 09:00:00 +0000")
    crlf, lf = as_bytes(msg, "\r\n"), as_bytes(msg, "\n")
    parsed = parse_message(crlf)
    assert parsed.message_id_generated
    assert FINGERPRINT.fullmatch(parsed.message_id)
    assert parse_message(lf).message_id == parsed.message_id  # an mbox round trip
    assert parse_headers(crlf).message_id == parsed.message_id
    other = simple_message(Date="Tue, 03 Jan 2006 09:00:01 +0000")
    assert parse_message(as_bytes(other)).message_id != parsed.message_id


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Mon, 02 Jan 2006 10:00:00 +0000", datetime(2006, 1, 2, 10, tzinfo=UTC)),
        ("Mon, 02 Jan 2006 10:00:00 -0000", datetime(2006, 1, 2, 10, tzinfo=UTC)),  # naive
        ("2 Jan 06 10:00 GMT", datetime(2006, 1, 2, 10, tzinfo=UTC)),
        ("Mon, 1 Jan 0001 00:00:00 -0800", None),  # Enron
        ("Mon, 1 Jan 0001 00:00:00 +0800", None),  # cannot even be moved to UTC
        ("not a date", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_date(value: str | None, expected: datetime | None) -> None:
    result = parse_date(value)
    assert result == expected
    if result is not None:
        assert result.tzinfo is not None


def test_dates_in_messages() -> None:
    for value, expected in [
        ("Mon, 02 Jan 2006 10:00:00 -0000", datetime(2006, 1, 2, 10, tzinfo=UTC)),
        ("Mon, 1 Jan 0001 00:00:00 -0800", None),
        ("yesterday", None),
    ]:
        msg = simple_message()
        msg.set_raw("Date", value)
        raw = msg.as_bytes(policy=policy.compat32)
        assert parse_message(raw).date == expected
        assert parse_headers(raw).date == expected


def test_unknown_and_mislabelled_charsets() -> None:
    for data, label, expected in [
        ("Grüße".encode(), "x-unknown", "Grüße"),
        ("Grüße".encode("latin-1"), "us-ascii", "Grüße"),
        ("Grüße".encode("latin-1"), "x-unknown", "Grüße"),
        ("Привет".encode("koi8-r"), "koi8-r", "Привет"),
    ]:
        msg = simple_message()
        msg.set_content(data, maintype="text", subtype="plain")
        msg.set_param("charset", label)
        assert parse_message(as_bytes(msg)).text == expected, label


def test_headers_policy_default_cannot_read() -> None:
    msg = simple_message(Message_ID="<bounce@x>")
    del msg["To"], msg["Subject"]
    msg.set_raw("To", "unlisted-recipients:; (no To-header on input)")
    msg.set_raw("Subject", "SUBJECT-PLACEHOLDER")
    raw = msg.as_bytes(policy=policy.compat32).replace(b"SUBJECT-PLACEHOLDER", b"Fr\xf6sche")
    parsed = parse_message(raw)
    assert parsed.parse_error is None
    assert "AttributeError" in parsed.defects  # policy.default raised; we carried on
    assert parsed.to == ()
    assert ("To", "unlisted-recipients:; (no To-header on input)") in parsed.headers
    assert parsed.subject == "Frösche"  # raw Latin-1 byte, not U+FFFD
    assert_paths_agree(parsed, parse_headers(raw))


def test_ids_references_and_in_reply_to() -> None:
    msg = simple_message(
        Message_ID="  <child@x> (added by relay)",
        In_Reply_To='Your message of "Mon, 2 Jan" <parent@x>',
    )
    msg.set_raw("References", "<root@x>\r\n <parent@x>")  # folded
    msg.set_raw("References", "<other@x> <root@x>")  # a second References header
    raw = msg.as_bytes(policy=policy.compat32)
    parsed = parse_message(raw)
    assert parsed.message_id == "child@x"
    assert parsed.in_reply_to == "parent@x"
    assert parsed.references == ("root@x", "parent@x", "other@x")
    assert_paths_agree(parsed, parse_headers(raw))


def test_header_block_edge_cases() -> None:
    raw = as_bytes(simple_message(Message_ID="<e@x>"), "\n")
    mbox = b"From sender@example.com Mon Jan  2 10:00:00 2006\n" + raw
    assert parse_headers(mbox).message_id == parse_message(mbox).message_id == "e@x"
    no_separator = raw.split(b"\n\n", 1)[0] + b"\nthis line is body, not a header\n"
    assert parse_headers(no_separator).message_id == "e@x"
    assert "MissingHeaderBodySeparatorDefect" in parse_message(no_separator).defects
    continuation_first = b" folded first line\n" + raw
    assert parse_headers(continuation_first).message_id == "e@x"


def test_catastrophic_failure_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    class Exploding:
        def __init__(self, **_: object) -> None:
            pass

        def parsebytes(self, _: bytes) -> None:
            raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(parse_module, "BytesParser", Exploding)
    raw = as_bytes(simple_message(Message_ID="<boom@x>"))
    parsed = parse_message(raw)
    assert parsed.parse_error is not None and "RecursionError" in parsed.parse_error
    assert parsed.message_id == "boom@x"
    assert parsed.subject.startswith("Grüße")
    assert parsed.headers and parsed.from_


def test_deep_nesting_is_cut_off() -> None:
    msg = simple_message()
    for _ in range(80):
        outer = EmailMessage()
        outer.make_mixed()
        outer.attach(msg)
        msg = outer
    parsed = parse_message(as_bytes(msg))
    assert parsed.parse_error is None
    assert "MaxDepthExceeded" in parsed.defects


def test_odd_inputs() -> None:
    for raw in (b"", b"\r\n", b"\x00" * 100, b"From: x\r\n", b"no headers at all"):
        for parsed in (parse_message(raw), parse_headers(raw)):
            assert parsed.message_id
            assert parsed.size == len(raw)


# --- properties ---------------------------------------------------------------------------

_subjects = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=80
).map(lambda s: " ".join(s.split()))
_names = st.text(alphabet=st.sampled_from("abcXYZ äöüЖ日本,.'"), max_size=20).map(
    lambda s: " ".join(s.split()).strip(",.' ")
)


@settings(deadline=None, max_examples=80)
@given(
    subject=_subjects,
    people=st.lists(st.tuples(_names, st.emails()), min_size=1, max_size=4),
    msgid=st.one_of(st.none(), st.from_regex(r"[a-z0-9.]{1,20}@[a-z0-9.]{1,20}", fullmatch=True)),
    crlf=st.booleans(),
)
def test_fast_path_agrees_on_built_messages(
    subject: str, people: list[tuple[str, str]], msgid: str | None, crlf: bool
) -> None:
    mailboxes = [HeaderAddress(n, *a.rsplit("@", 1)) for n, a in people]
    msg = EmailMessage()
    msg["From"] = mailboxes[0]
    msg["To"] = mailboxes
    msg["Subject"] = subject
    if msgid:
        msg["Message-ID"] = f"<{msgid}>"
    msg.set_content("body\n")
    raw = as_bytes(msg, "\r\n" if crlf else "\n")
    full, fast = parse_message(raw), parse_headers(raw)
    assert full.parse_error is None
    assert_paths_agree(full, fast)
    assert full.subject == subject.strip()


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    for parsed in (parse_message(raw), parse_headers(raw)):
        assert parsed.message_id


_TEMPLATE = as_bytes(simple_message(Message_ID="<t@x>", Cc="=?utf-8?q?J=C3=B6rg?= <j@x.de>"))


@settings(deadline=None, max_examples=150)
@given(st.lists(st.tuples(st.integers(0, len(_TEMPLATE)), st.binary(max_size=8)), max_size=6))
def test_mutated_messages_never_raise(edits: list[tuple[int, bytes]]) -> None:
    raw = bytearray(_TEMPLATE)
    for position, data in edits:
        raw[position : position + len(data)] = data
    for parsed in (parse_message(bytes(raw)), parse_headers(bytes(raw))):
        assert parsed.message_id


# --- the shared corpus --------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[3]
CORPUS = Path(os.environ.get("MAILROOM_CORPUS", REPO.parent / "shared" / "corpus"))
ENRON_STEP = 5  # every 5th Enron file (~1,300 of 6,624) keeps the test near 15 s
MBOX_NAME = re.compile(r"\.mbox(\.txt)?$")


def corpus_messages() -> Iterator[tuple[str, bytes]]:
    for sub in ("mime", "conversations/notmuch-corpora"):
        for path in sorted(p for p in (CORPUS / sub).rglob("*") if p.is_file()):
            yield str(path), path.read_bytes()
    enron = sorted(p for p in (CORPUS / "conversations/enron").rglob("*") if p.is_file())
    for path in enron[::ENRON_STEP]:
        yield str(path), path.read_bytes()
    for path in sorted(p for p in CORPUS.rglob("*") if p.is_file() and MBOX_NAME.search(p.name)):
        box = mailbox.mbox(str(path), create=False)
        try:
            for index, key in enumerate(box.keys()):
                yield f"{path}#{index}", box.get_bytes(key)
        finally:
            box.close()


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no corpus at {CORPUS} (set MAILROOM_CORPUS)")
def test_corpus() -> None:
    count = errors = compared = 0
    crashes: list[str] = []
    disagreements: list[str] = []
    for name, raw in corpus_messages():
        count += 1
        try:
            full, fast = parse_message(raw), parse_headers(raw)
        except Exception as exc:  # the one thing these functions must never do
            crashes.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        assert full.message_id and fast.message_id, name
        if full.parse_error:
            errors += 1
            continue
        compared += 1
        for field in SHARED_FIELDS:
            if getattr(full, field) != getattr(fast, field):
                disagreements.append(
                    f"{name}: {field}: {getattr(full, field)!r} != fast {getattr(fast, field)!r}"
                )
    assert count > 0, f"no messages found under {CORPUS}"
    assert not crashes, "\n".join(crashes[:20])
    if disagreements:
        warnings.warn(
            f"{len(disagreements)} fast/full disagreements in {compared} messages:\n"
            + "\n".join(disagreements[:20]),
            stacklevel=1,
        )
    # Exact on the shared corpus today; a little slack so an unseen corpus (the held-out
    # set) reports its rare differences as a warning rather than failing outright.
    assert len(disagreements) <= compared // 1000, "\n".join(disagreements[:20])
    assert errors <= count // 100, f"{errors} of {count} messages had a parse_error"


def test_a_parse_survives_pickling_as_the_fetch_workers_send_it() -> None:
    import pickle

    msg = simple_message(Message_ID="<p@x>", Cc="Carol <carol@example.net>", Date="Mon, 2 Jan 2006")
    msg.add_attachment(b"%PDF-1.4\n", maintype="application", subtype="pdf", filename="a.pdf")
    for parsed in (parse_headers(as_bytes(msg)), parse_message(as_bytes(msg))):
        again = pickle.loads(pickle.dumps(parsed, pickle.HIGHEST_PROTOCOL))
        assert again == parsed and type(again) is ParsedMessage
        assert type(again.from_[0]) is Address

"""Raw message bytes → `ParsedMessage`, two ways: complete, or headers only and fast.

`parse_message` is the complete parse: the stdlib `email` package with `policy.default`,
which decodes RFC 2047/2231 and charsets correctly and records defects, but builds a parse
tree per header and a tree of parts per message (a few hundred messages a second). It
never raises: `policy.default` itself raises on some malformed headers (AttributeError,
IndexError inside its header parser), so every header is read on its own and falls back
to the lenient decoder in mail.headers; a failure of the whole parse still returns a
`ParsedMessage` with `parse_error` set, the headers that could be read and an id.

`parse_headers` exists for the sync hot path, which only needs what matching, filters
and threading use and must keep up with large mailboxes. It cuts the header block out of
the bytes the way the stdlib feed parser does and decodes each header as the complete
parse does, building no tree of parts; text, HTML and attachments are left for later
(ingest.bodies). It agrees with `parse_message` on every field it fills for the test corpus
(see tests/unit/mail/test_parse.py).

Both paths use the same rules for the fields they share: addresses through
mail.addresses.parse_address_list on the raw header value, ids through mail.threads, the
first header of each name (all References headers, joined), and the same fingerprint
inputs (raw Date, From, To, Subject values and the raw body bytes).
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from email import policy
from email.message import Message
from email.parser import BytesParser
from email.utils import parsedate_to_datetime

from mailroom.mail.addresses import parse_address_list
from mailroom.mail.bodies import extract_bodies
from mailroom.mail.headers import (
    decode_text,
    has_encoded_word,
    split_header_block,
    to_text,
    unfold,
)
from mailroom.mail.message import ParsedMessage
from mailroom.mail.threads import fingerprint_id, normalise_message_id, parse_references

__all__ = ["STRUCTURED_HEADERS", "parse_date", "parse_headers", "parse_message"]

_MIN_YEAR = 1900  # nothing real predates this
_ZERO_YEAR = re.compile(r"(?<![\d+:-])0\d{3}(?![\d:])")  # a year written 0001 (Enron)
_ADDRESS_FIELDS = ("from", "to", "cc", "bcc", "reply-to", "sender")
_NEEDED = frozenset({"message-id", "date", "subject", "in-reply-to", *_ADDRESS_FIELDS})
# Headers policy.default parses with a grammar (headerregistry's default map); any other
# header is unstructured text, which for printable ASCII without encoded words decodes to
# itself, unfolded.
STRUCTURED_HEADERS = frozenset(
    {
        *(
            f"{p}{n}"
            for p in ("", "resent-")
            for n in ("date", "sender", "to", "cc", "bcc", "from")
        ),
        "orig-date",
        "reply-to",
        "mime-version",
        "content-type",
        "content-disposition",
        "content-transfer-encoding",
        "message-id",
    }
)
# Content types that make a delivery report (matching.classify reads them on the fast path).
_REPORT_HINTS = ("report", "delivery-status", "disposition-notification")
_PLAIN = re.compile(r"[\x20-\x7e\t\r\n]*")
_POLICY_MAX = 2048  # characters of one structured header given to policy.default
_POLICY_BUDGET = 32768  # ... and of all of a message's structured headers together


def parse_date(value: str | None) -> datetime | None:
    """A Date header as an aware datetime (naive, i.e. `-0000`, is taken as UTC); None when
    missing, unparseable or implausible (before 1900, or a year written `0001`, which
    email.utils would silently read as 2001)."""
    if not value:
        return None
    text = to_text(unfold(value)).strip()
    if _ZERO_YEAR.search(text):  # `0001` would otherwise be read as the two-digit year 2001
        return None
    try:
        parsed = parsedate_to_datetime(text)
    except Exception:  # ValueError, TypeError, OverflowError, IndexError across versions
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        parsed.astimezone(UTC)  # year 1 with a positive offset cannot be moved
    except (OverflowError, ValueError):
        return None
    return parsed if parsed.year >= _MIN_YEAR else None


class _Fields:
    """The raw values of the headers both paths read: first of each name, all References."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.first: dict[str, str] = {}
        self.references: list[str] = []
        for name, value in pairs:
            key = name.strip().lower()
            if key == "references":
                self.references.append(value)
            elif key in _NEEDED and key not in self.first:
                self.first[key] = value

    def get(self, name: str) -> str:
        return self.first.get(name, "")

    def build(self, body: bytes, size: int, subject: str | None = None) -> ParsedMessage:
        """The header-only ParsedMessage; `subject` overrides the lenient decoding."""
        message_id = normalise_message_id(self.get("message-id"))
        generated = message_id is None
        if message_id is None:
            message_id = fingerprint_id(
                self.get("date"), self.get("from"), self.get("to"), self.get("subject"), body
            )
        addresses = {f: parse_address_list(self.get(f)) for f in _ADDRESS_FIELDS}
        references = tuple(dict.fromkeys(i for v in self.references for i in parse_references(v)))
        if subject is None:
            subject = decode_text(self.get("subject"))
        return ParsedMessage(
            message_id=message_id,
            message_id_generated=generated,
            date=parse_date(self.get("date")),
            subject=subject.strip(),
            from_=addresses["from"],
            to=addresses["to"],
            cc=addresses["cc"],
            bcc=addresses["bcc"],
            reply_to=addresses["reply-to"],
            sender=addresses["sender"],
            in_reply_to=normalise_message_id(self.get("in-reply-to")),
            references=references,
            size=size,
        )


def _as_bytes(raw: object) -> bytes:
    if isinstance(raw, bytes):
        return raw
    if isinstance(raw, (bytearray, memoryview)):
        return bytes(raw)
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogatepass")
    return b""


def parse_headers(raw: bytes) -> ParsedMessage:
    """The fast path: ids, people, date, subject and headers, without the tree of parts.

    The header block is cut out the way the stdlib feed parser cuts it (mail.headers) and
    each header goes through the complete parse's own decoder (`_decode_header`), so
    `subject`, the typed fields and `headers` are what `parse_message` gives, except that
    the structured headers in STRUCTURED_HEADERS (whose policy.default grammar costs more
    than all the rest) are left out of `headers`: their values fill the typed fields (ids,
    people, date) anyway, and a caller that needs one as a header takes the complete parse
    (matching.view.MailView). A Content-Type that may name a delivery report is kept, since
    bulk-mail detection reads it. `text`, `html` and `attachments` stay empty. Never raises.
    """
    data = _as_bytes(raw)
    try:
        pairs, offset = split_header_block(data)
        defects: list[str] = []
        budget = [_POLICY_BUDGET]
        headers = tuple(
            (n, _decode_header(n, v, defects, budget)) for n, v in pairs if _eager(n, v)
        )
        subject = next((v for n, v in headers if n.strip().lower() == "subject"), "")
        base = _Fields(pairs).build(data[offset:], len(data), subject)
        return replace(base, headers=headers, defects=tuple(dict.fromkeys(defects)))
    except Exception as exc:  # pragma: no cover - nothing known reaches this
        return _last_resort(data, f"header parse failed: {type(exc).__name__}: {exc}")


def _eager(name: str, value: str) -> bool:
    """Whether `parse_headers` decodes this header into `headers` (see its docstring)."""
    key = name.strip().lower()
    if key not in STRUCTURED_HEADERS:
        return True
    return key == "content-type" and any(k in value.lower() for k in _REPORT_HINTS)


def _last_resort(data: bytes, error: str) -> ParsedMessage:
    return ParsedMessage(
        message_id=fingerprint_id("", "", "", "", data),
        message_id_generated=True,
        date=None,
        subject="",
        from_=(),
        size=len(data),
        parse_error=error,
    )


def _decode_header(name: str, value: str, defects: list[str], budget: list[int]) -> str:
    """One header's decoded value via policy.default, else the lenient decoder.

    policy.default's grammar parser takes superlinear time on long structured values (16 KB
    of quotes in a To header: seconds), so a structured value over _POLICY_MAX characters,
    or past the message's _POLICY_BUDGET, is decoded leniently instead ("HeaderTooLong").
    """
    structured = name.lower() in STRUCTURED_HEADERS
    if not structured and _PLAIN.fullmatch(value) and "=?" not in value:
        return unfold(value)  # exactly what policy.default gives, without its parse tree
    if structured:
        budget[0] -= len(value)
        if len(value) > _POLICY_MAX or budget[0] < 0:
            defects.append("HeaderTooLong")
            return decode_text(value)
    try:
        header = policy.default.header_fetch_parse(name, value)
        defects.extend(type(d).__name__ for d in getattr(header, "defects", ()))
        decoded = str(header)
    except Exception as exc:  # AttributeError/IndexError from the header parser
        defects.append(type(exc).__name__)
        return decode_text(value)
    if "\ufffd" in decoded or "=?" in decoded:
        text = decode_text(value)
        # An encoded word policy.default gave up on (iso-2022-jp with a stray byte), or raw
        # 8-bit bytes that are not UTF-8, which it turns into U+FFFD: ours reads them.
        if has_encoded_word(decoded) or ("\ufffd" in decoded and "\ufffd" not in text):
            return text
    return decoded


def parse_message(raw: bytes) -> ParsedMessage:
    """The complete parse: headers, ids, addresses, date, text, HTML, attachments, defects.

    Never raises. When the parse fails part way, `parse_error` says what failed and the
    result holds what could be read (at least the header-only fields and an id).
    """
    data = _as_bytes(raw)
    try:
        return _parse_full(data)
    except Exception as exc:  # includes RecursionError and MemoryError on hostile input
        error = f"{type(exc).__name__}: {exc}"
    try:
        pairs, offset = split_header_block(data)
        headers = tuple((n, decode_text(v)) for n, v in pairs)
        base = _Fields(pairs).build(data[offset:], len(data))
        return replace(base, headers=headers, parse_error=error[:500])
    except Exception as exc:  # pragma: no cover - nothing known reaches this
        return _last_resort(data, f"{error[:250]}; then {type(exc).__name__}: {exc}"[:500])


def _parse_full(data: bytes) -> ParsedMessage:
    msg: Message = BytesParser(policy=policy.default).parsebytes(data)
    _, offset = split_header_block(data, ())
    defects: list[str] = [type(d).__name__ for d in msg.defects]
    raw_pairs = [(str(n), v) for n, v in msg.raw_items() if isinstance(v, str)]
    budget = [_POLICY_BUDGET]
    headers = tuple((n, _decode_header(n, v, defects, budget)) for n, v in raw_pairs)
    subject = next((v for n, v in headers if n.strip().lower() == "subject"), "")
    bodies = extract_bodies(msg)
    defects.extend(bodies.defects)
    base = _Fields(raw_pairs).build(data[offset:], len(data), subject)
    return replace(
        base,
        text=bodies.text,
        html=bodies.html,
        attachments=tuple(bodies.attachments),
        headers=headers,
        defects=tuple(dict.fromkeys(defects)),
    )

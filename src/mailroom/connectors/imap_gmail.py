"""Gmail's IMAP extensions (X-GM-EXT-1), read on the imaplib connection under ImapSource.

Google documents them on its "IMAP Extensions" page: a server that lists `X-GM-EXT-1` in
CAPABILITY answers the FETCH items `X-GM-MSGID` (a message's unique, unchanging 64-bit
id, the same in every folder), `X-GM-THRID` (its thread) and `X-GM-LABELS` (the labels it
carries: `\\Inbox`, `\\Sent`, `\\Important`, … and the user's own, names in modified
UTF-7 as folder names are), and the SEARCH key `X-GM-RAW` (Gmail's own search syntax,
e.g. `in:inbox`). Every message of the account is in the folder with the `\\All`
attribute (`[Gmail]/All Mail`) once, whatever its labels; each label folder shows it
again. Syncing All Mail alone therefore fetches each message once.

Like imap_fetch.py these functions take the `imaplib.IMAP4` of a logged-in ImapSource with
the folder selected (`ImapSource.run_raw`), and bound and check what they read: a
message's labels at most `MAX_LABELS`, each at most `MAX_LABEL` characters, and an
X-GM-MSGID a positive 64-bit number, or the answer is a ProtocolError.
"""

from __future__ import annotations

import imaplib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from imapclient import imap_utf7

from mailroom.connectors.imap_fetch import search
from mailroom.connectors.limits import number, nz_number
from mailroom.errors import ProtocolError

CAPABILITY = "X-GM-EXT-1"
SENT = "\\Sent"
INBOX = "\\Inbox"
MAX_LABELS = 500
MAX_LABEL = 1000
U64_MAX = 2**64 - 1
LISTING_ITEMS = "(UID RFC822.SIZE X-GM-MSGID X-GM-LABELS)"
CHANGE_ITEMS = "(UID FLAGS X-GM-LABELS)"

_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_MSGID = re.compile(rb"\bX-GM-MSGID (\d+)")
_FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)")
_LABELS = re.compile(rb"\bX-GM-LABELS \(")
_LITERAL = re.compile(rb"\{(\d+)\}$")
_QUERY = re.compile(r"^[\x20-\x7e]{1,200}$")


@dataclass(frozen=True, slots=True)
class GmailEntry:
    """One All Mail message as the listing saw it: UID, size, X-GM-MSGID and labels."""

    uid: int
    size: int
    msgid: int
    labels: tuple[str, ...]


def _server(imap: imaplib.IMAP4) -> str:
    return f"The Gmail IMAP server {imap.host}"


def _check(typ: str, data: Sequence[object], what: str) -> None:
    if typ != "OK":
        said = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
        raise ProtocolError(f"The IMAP server rejected {what}: {said}")


def _joined(item: object) -> bytes | None:
    """A FETCH answer as one line: a literal (a label with odd characters) made quoted."""
    if isinstance(item, bytes):
        return item
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], bytes):
        head, literal = item
        if isinstance(literal, bytes):
            quoted = b'"' + literal.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
            return _LITERAL.sub(b"", head) + quoted
    return None


def parse_labels(line: bytes, *, server: str = "The server") -> tuple[str, ...]:
    """The labels of an `X-GM-LABELS (…)` item: atoms and quoted strings, decoded from
    modified UTF-7 (RFC 3501 §5.1.3), sorted; () when the item is absent."""
    found = _LABELS.search(line)
    if found is None:
        return ()
    labels: list[str] = []
    at, end = found.end(), len(line)
    while at < end:
        char = line[at : at + 1]
        if char == b")":
            return tuple(sorted(labels))
        if char == b" ":
            at += 1
            continue
        if char == b'"':
            token, at = _quoted(line, at + 1, server)
        else:
            stop = at
            while stop < end and line[stop : stop + 1] not in (b" ", b")"):
                stop += 1
            token, at = line[at:stop], stop
        if len(labels) >= MAX_LABELS or len(token) > MAX_LABEL:
            raise ProtocolError(f"{server} sent more or longer X-GM-LABELS than Mailroom reads")
        labels.append(imap_utf7.decode(token))
    raise ProtocolError(f"{server} sent an X-GM-LABELS list without its closing parenthesis")


def _quoted(line: bytes, at: int, server: str) -> tuple[bytes, int]:
    out = bytearray()
    while at < len(line):
        char = line[at : at + 1]
        if char == b"\\" and at + 1 < len(line):
            out += line[at + 1 : at + 2]
            at += 2
            continue
        if char == b'"':
            return bytes(out), at + 1
        out += char
        at += 1
    raise ProtocolError(f"{server} sent an unterminated label in X-GM-LABELS")


def listing(imap: imaplib.IMAP4, spec: str) -> list[GmailEntry]:
    """UID, size, X-GM-MSGID and labels of the selected folder's messages in the UID set
    `spec` (e.g. "1:500"), ascending; UIDs outside the set's bounds are left out."""
    typ, data = imap.uid("FETCH", spec, LISTING_ITEMS)
    _check(typ, data, "UID FETCH X-GM-MSGID X-GM-LABELS")
    low, high = _bounds(spec)
    server = _server(imap)
    found: dict[int, GmailEntry] = {}
    for item in data:
        line = _joined(item)
        if line is None:
            continue
        uid, size, msgid = _UID.search(line), _SIZE.search(line), _MSGID.search(line)
        if not (uid and size and msgid):
            continue
        value = nz_number(uid.group(1), "a UID in a FETCH answer", server=server)
        if not low <= value <= high:
            continue
        ident = int(msgid.group(1))
        if not 0 < ident <= U64_MAX:
            raise ProtocolError(f"{server} sent an X-GM-MSGID outside 1..2^64-1")
        found[value] = GmailEntry(
            uid=value,
            size=number(size.group(1), "an RFC822.SIZE", server=server),
            msgid=ident,
            labels=parse_labels(line, server=server),
        )
    return [found[uid] for uid in sorted(found)]


def changes(
    imap: imaplib.IMAP4, *, high: int, modseq: int | None
) -> dict[int, tuple[tuple[str, ...], tuple[str, ...]]]:
    """UID → (flags, labels) of the messages (UID <= high) whose flags or labels changed
    since `modseq` (CHANGEDSINCE, RFC 7162 §3.1.4: Gmail raises a message's MODSEQ when
    its labels change), or of every message when `modseq` is None."""
    if high < 1:
        return {}
    args: tuple[str, ...] = (f"1:{high}", CHANGE_ITEMS)
    if modseq is not None:
        args += (f"(CHANGEDSINCE {modseq})",)
    typ, data = imap.uid("FETCH", *args)
    _check(typ, data, "UID FETCH X-GM-LABELS")
    server = _server(imap)
    found: dict[int, tuple[tuple[str, ...], tuple[str, ...]]] = {}
    for item in data:
        line = _joined(item)
        uid = _UID.search(line) if line else None
        if line is None or uid is None:
            continue
        value = nz_number(uid.group(1), "a UID in a FETCH answer", server=server)
        if value <= high:
            flags = _FLAGS.search(line)
            words = flags.group(1).decode("utf-8", "replace").split() if flags else []
            kept = tuple(f for f in words if f != "\\Recent")
            found[value] = (kept, parse_labels(line, server=server))
    return found


def raw_search(imap: imaplib.IMAP4, query: str) -> list[int]:
    """UIDs of the selected folder's messages matching Gmail's search `query`
    (`UID SEARCH X-GM-RAW "in:inbox"`), ascending."""
    if not _QUERY.match(query) or '"' in query or "\\" in query:
        raise ValueError(f"not a plain ASCII X-GM-RAW query: {query!r}")
    return search(imap, f'X-GM-RAW "{query}"')


def _bounds(spec: str) -> tuple[int, int]:
    """The lowest and highest UID a simple `a:b` / `a:*` / `a` set allows."""
    first, _, last = spec.partition(":")
    if not first.isdigit() or (last and last != "*" and not last.isdigit()):
        return 1, U64_MAX
    high = U64_MAX if last == "*" else int(last or first)
    return int(first), high

"""The IMAP hot path on bare imaplib: UID lists, raw bodies, flag changes and expunges.

Why imaplib here when imap.py logs in with IMAPClient: IMAPClient parses every FETCH
response into Python values with its own lexer, which costs about three times the fetch
itself on a large mailbox (22.5 s against 6.5 s for 100,000 messages on this kind of
machine). imaplib hands back the literal as bytes, and the few items we need around it
(UID, RFC822.SIZE, FLAGS, INTERNALDATE) are cut out with one regular expression. These
functions take the `imaplib.IMAP4` under IMAPClient (same socket, same selected folder);
the caller (ImapSource) turns whatever they raise into mailroom errors.

Invariants:
- only UID commands (RFC 3501 §6.4.8): message sequence numbers shift under expunges;
- only BODY.PEEK[] (§6.4.5), on a folder opened with EXAMINE: nothing sets \\Seen;
- "UID a:b" answers are filtered to a..b, because "*" (and a range past the end) always
  matches the highest UID in use (§6.4.8), so `n:*` returns that message even below n;
- a UID answered without its bytes (`BODY[] NIL`, no literal) is `Unreadable`, with what
  the server said; a UID missing from a FETCH answer is asked for again (`UID FETCH set
  (UID)`): gone, it was expunged meanwhile and is left out; still listed, it is
  `Unreadable` too. Nothing asked for disappears without a reason (issue 11, item 8);
- every UID and size read is a 32-bit number (limits.py), or the answer is a ProtocolError.
"""

from __future__ import annotations

import imaplib
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta, timezone

from mailroom.connectors.base import Fetched, RawMessage, Unreadable
from mailroom.connectors.limits import U32_MAX, number, nz_number
from mailroom.errors import ProtocolError

_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)")
_DATE = re.compile(rb'\bINTERNALDATE "([^"]+)"')
_VANISHED = re.compile(rb"^(?:\(EARLIER\)\s*)?([0-9:,*]+)")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NUMBERS = {name.lower().encode(): number for number, name in enumerate(_MONTHS, 1)}
_INTERNALDATE = re.compile(
    rb"\s*(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)([0-5]\d)\s*"
)
FETCH_ITEMS = "(UID RFC822.SIZE FLAGS INTERNALDATE BODY.PEEK[])"


def uid_set(uids: Iterable[int]) -> str:
    """A compact UID set ("1:5,7,9:10") from any UIDs (RFC 3501 §9, sequence-set)."""
    ordered = sorted(set(uids))
    if not ordered:
        raise ValueError("an empty UID set")
    parts: list[str] = []
    start = prev = ordered[0]
    for uid in ordered[1:]:
        if uid == prev + 1:
            prev = uid
            continue
        parts.append(f"{start}:{prev}" if prev != start else str(start))
        start = prev = uid
    parts.append(f"{start}:{prev}" if prev != start else str(start))
    return ",".join(parts)


def parse_uid_set(text: bytes, *, high: int = U32_MAX, server: str = "The server") -> set[int]:
    """The UIDs <= `high` of a sequence-set such as b"41,43:116" (as VANISHED sends it).

    Ranges are cut at `high` before they are expanded: `1:4294967295` costs no more than
    the UIDs the caller knows."""
    result: set[int] = set()
    for part in text.split(b","):
        if not part:
            continue
        first, _, last = part.partition(b":")
        a = nz_number(first, "a UID in a VANISHED answer", server=server)
        b = nz_number(last or first, "a UID in a VANISHED answer", server=server)
        result.update(range(min(a, b), min(max(a, b), high) + 1))
    return result


def imap_date(day: date) -> str:
    """A date as SEARCH SINCE wants it: 1-Feb-2026 (RFC 3501 §9, date), locale-free."""
    return f"{day.day}-{_MONTHS[day.month - 1]}-{day.year}"


def _check(typ: str, data: Sequence[object], what: str) -> None:
    if typ != "OK":
        said = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
        raise ProtocolError(f"The IMAP server rejected {what}: {said}")


def _server(imap: imaplib.IMAP4) -> str:
    return f"The IMAP server {imap.host}"


def _uid(imap: imaplib.IMAP4, value: bytes, where: str) -> int:
    return nz_number(value, f"a UID in a {where} answer", server=_server(imap))


def search(imap: imaplib.IMAP4, criteria: str) -> list[int]:
    """UID SEARCH with ASCII criteria; the UIDs found, ascending."""
    typ, data = imap.uid("SEARCH", criteria)
    _check(typ, data, "UID SEARCH")
    found: set[int] = set()
    for line in data:
        if isinstance(line, bytes):
            found.update(_uid(imap, tok, "SEARCH") for tok in line.split() if tok.isdigit())
    return sorted(found)


def search_text(imap: imaplib.IMAP4, key: str, value: str) -> list[int]:
    """UID SEARCH KEY "value" (FROM, TO, CC …), sent as a UTF-8 literal when not ASCII."""
    if value.isascii() and '"' not in value and "\\" not in value:
        return search(imap, f'{key} "{value}"')
    imap.literal = value.encode("utf-8")  # type: ignore[assignment]  # imaplib sends bytes
    return search(imap, f"CHARSET UTF-8 {key}")


def uid_sizes(
    imap: imaplib.IMAP4, *, low: int, high: int | None = None, since: date | None = None
) -> list[tuple[int, int]]:
    """(UID, RFC822.SIZE) of every message with low <= UID <= high, ascending.

    `high` None means up to the newest; `since` keeps messages whose INTERNALDATE is on or
    after that day (SEARCH SINCE, RFC 3501 §6.4.4), for a mailbox's backfill window.
    """
    top = "*" if high is None else str(high)
    if high is not None and high < low:
        return []
    if since is not None:
        uids = [u for u in search(imap, f"UID {low}:{top} SINCE {imap_date(since)}") if u >= low]
        if high is not None:
            uids = [u for u in uids if u <= high]
        if not uids:
            return []
        spec = uid_set(uids)
    else:
        spec = f"{low}:{top}"
    typ, data = imap.uid("FETCH", spec, "(UID RFC822.SIZE)")
    _check(typ, data, "UID FETCH RFC822.SIZE")
    sizes: dict[int, int] = {}
    for line in data:
        head = line[0] if isinstance(line, tuple) else line
        if not isinstance(head, bytes):
            continue
        uid, size = _UID.search(head), _SIZE.search(head)
        if uid and size:
            value = _uid(imap, uid.group(1), "FETCH")
            if value >= low and (high is None or value <= high):
                sizes[value] = number(size.group(1), "an RFC822.SIZE", server=_server(imap))
    return sorted(sizes.items())


def fetch_raw(
    imap: imaplib.IMAP4, *, folder: str, uidvalidity: int, uids: Sequence[int]
) -> Fetched:
    """The messages with these UIDs, in the order asked, with flags and INTERNALDATE; and
    those the server still lists but did not send readably (`Fetched.unreadable`)."""
    if not uids:
        return Fetched()
    typ, data = imap.uid("FETCH", uid_set(uids), FETCH_ITEMS)
    _check(typ, data, "UID FETCH BODY.PEEK[]")
    found: dict[int, RawMessage] = {}
    bodiless: dict[int, bytes] = {}  # UID → the answer that came without the message
    for index, item in enumerate(data):
        if not isinstance(item, tuple) or len(item) != 2:
            _note_bodiless(imap, item, bodiless)  # ")" closers, flag updates, `BODY[] NIL`
            continue
        head, body = item
        tail = data[index + 1] if index + 1 < len(data) else b""
        meta = head + (tail if isinstance(tail, bytes) else b"")
        uid = _UID.search(meta)
        if uid is None or not isinstance(body, bytes):
            continue
        when = _DATE.search(meta)
        value = _uid(imap, uid.group(1), "FETCH")
        found[value] = RawMessage(
            folder=folder,
            uidvalidity=uidvalidity,
            uid=value,
            data=body,
            flags=_flags_of(meta),
            internaldate=_internaldate(when.group(1)) if when else None,
        )
    result = Fetched(messages=[found[uid] for uid in uids if uid in found])
    missing = [uid for uid in uids if uid not in found]
    if missing:
        result.unreadable = _unreadable(imap, missing, bodiless)
    return result


def _note_bodiless(imap: imaplib.IMAP4, item: object, bodiless: dict[int, bytes]) -> None:
    """Remember a FETCH answer line that names a UID but carries no literal."""
    if isinstance(item, bytes):
        uid = _UID.search(item)
        if uid is not None:
            bodiless[_uid(imap, uid.group(1), "FETCH")] = item


def _unreadable(
    imap: imaplib.IMAP4, missing: Sequence[int], bodiless: dict[int, bytes]
) -> list[Unreadable]:
    """Which of the UIDs the answer did not bring are still in the folder, and why."""
    typ, data = imap.uid("FETCH", uid_set(missing), "(UID)")
    _check(typ, data, "UID FETCH UID")
    still = {uid for uid, _ in _answered_uids(imap, data)}
    result = []
    for uid in missing:
        if uid not in still:
            continue  # expunged meanwhile
        if uid in bodiless:
            said = _shown(bodiless[uid])
            result.append(Unreadable(uid, f"the FETCH answer had no message in it: {said}"))
        else:
            result.append(Unreadable(uid, "the server lists it but left it out of FETCH"))
    return result


def _answered_uids(imap: imaplib.IMAP4, data: Sequence[object]) -> Iterable[tuple[int, bytes]]:
    for line in data:
        head = line[0] if isinstance(line, tuple) else line
        if isinstance(head, bytes):
            uid = _UID.search(head)
            if uid is not None:
                yield _uid(imap, uid.group(1), "FETCH"), head


def _shown(answer: bytes, limit: int = 200) -> str:
    """A server's answer as text fit for an error message: printable, at most `limit`."""
    text = answer.decode("utf-8", "replace")
    text = "".join(c if c.isprintable() else " " for c in text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _internaldate(value: bytes) -> str | None:
    """An INTERNALDATE ("17-Jul-1996 02:44:25 -0700", RFC 3501 §9 date-time) in ISO 8601.

    The usual shape is read by one regular expression (strptime cost 4% of a fetch
    worker's CPU, bench/README.md); anything else goes to strptime, as before."""
    found = _INTERNALDATE.fullmatch(value)
    if found is None:
        return _internaldate_strptime(value)
    day, month, year, hour, minute, second, sign, off_h, off_m = found.groups()
    month_number = _MONTH_NUMBERS.get(month.lower())
    if month_number is None:
        return _internaldate_strptime(value)
    offset = timedelta(hours=int(off_h), minutes=int(off_m))
    try:
        when = datetime(
            int(year),
            month_number,
            int(day),
            int(hour),
            int(minute),
            int(second),
            tzinfo=timezone(-offset if sign == b"-" else offset),
        )
    except ValueError:
        return None
    return when.isoformat()


def _internaldate_strptime(value: bytes) -> str | None:
    try:
        return datetime.strptime(value.decode().strip(), "%d-%b-%Y %H:%M:%S %z").isoformat()
    except ValueError:
        return None


Flags = dict[int, tuple[str, ...]]


def _flags_of(meta: bytes) -> tuple[str, ...]:
    # \Recent belongs to a session, not the message (RFC 3501 §2.3.2; gone in RFC 9051)
    found = _FLAGS.search(meta)
    words = found.group(1).decode("utf-8", "replace").split() if found else ()
    return tuple(f for f in words if f != "\\Recent")


def _fetched_flags(imap: imaplib.IMAP4, data: Sequence[object], high: int) -> Flags:
    """UID → flags from FETCH answers such as `* 3 FETCH (UID 7 FLAGS (\\Seen) MODSEQ (9))`."""
    flags: Flags = {}
    for line in data:
        head = line[0] if isinstance(line, tuple) else line
        if not isinstance(head, bytes):
            continue
        uid = _UID.search(head)
        if uid and _FLAGS.search(head):
            value = _uid(imap, uid.group(1), "FETCH")
            if value <= high:
                flags[value] = _flags_of(head)
    return flags


def changed_since(
    imap: imaplib.IMAP4, *, modseq: int, high: int, vanished: bool
) -> tuple[set[int] | None, Flags]:
    """UIDs <= high expunged, and the flags of those whose flags changed, since `modseq`.

    `UID FETCH 1:high (UID FLAGS) (CHANGEDSINCE m)` (CONDSTORE, RFC 7162 §3.1.4) answers
    only for messages whose mod-sequence is above m; with `vanished` (QRESYNC ENABLEd,
    §3.2.6) the VANISHED modifier adds one `* VANISHED (EARLIER) set` for what was
    expunged. Without it the expunges are not known here (None): ask UID SEARCH.
    """
    if high < 1:
        return set(), {}
    imap.untagged_responses.pop("VANISHED", None)
    modifier = f"(CHANGEDSINCE {modseq}{' VANISHED' if vanished else ''})"
    typ, data = imap.uid("FETCH", f"1:{high}", "(UID FLAGS)", modifier)
    _check(typ, data, "UID FETCH CHANGEDSINCE")
    gone: set[int] = set()
    for line in imap.untagged_responses.pop("VANISHED", []):
        match = _VANISHED.match(line.strip()) if isinstance(line, bytes) else None
        if match:
            gone.update(parse_uid_set(match.group(1), high=high, server=_server(imap)))
    return (gone if vanished else None), _fetched_flags(imap, data, high)


def all_flags(imap: imaplib.IMAP4, *, high: int) -> Flags:
    """UID → flags of every message with UID <= high (`UID FETCH 1:high (UID FLAGS)`).

    For servers without CONDSTORE: costs O(folder), paid only when STATUS saw a change.
    A UID missing from the answer is no longer in the folder.
    """
    if high < 1:
        return {}
    typ, data = imap.uid("FETCH", f"1:{high}", "(UID FLAGS)")
    _check(typ, data, "UID FETCH FLAGS")
    return _fetched_flags(imap, data, high)

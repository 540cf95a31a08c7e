"""Message identity for threading: Message-ID, In-Reply-To, References and fingerprints.

Message-IDs are compared as written (they are case-sensitive), without angle brackets,
comments or the whitespace that folding leaves inside long ids. Real headers are messy:
`In-Reply-To: Your message of "Mon, 2 Jan" <id@host>`, ids split over two lines, comments,
several References headers, bare ids without brackets. The scanner here skips comments and
quoted strings and takes the bracketed tokens; a bare token is accepted only when it has
an `@` and no spaces, so prose is never mistaken for an id.

A message without a usable Message-ID still needs an identity that is the same every time
it is fetched, so `fingerprint_id` hashes Date, From, To, Subject and the body. Its inputs
are the raw header values and raw body bytes; whitespace (refolding) and line endings
(CRLF vs LF after an mbox round trip) are canonicalised first.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

from mailroom.mail.headers import to_text, unfold

__all__ = ["fingerprint_id", "normalise_message_id", "parse_references", "subject_key"]

FINGERPRINT_DOMAIN = "mailroom.invalid"
_FINGERPRINT_VERSION = b"mailroom-fingerprint-v1"
_WS = re.compile(r"\s+")
_BAD_ID_CHAR = re.compile(r"[\x00-\x1f\x7f<>]")
_BODY_NEWLINE = re.compile(rb"\r\n|\r")
_MAX_ID = 998
# Reply and forward prefixes in the languages mail clients write them: Re, Fwd, Fw, AW/WG
# (German), TR (French), SV/VS (Nordic), Antw (Dutch), RIF/R (Italian), Odp/PD (Polish),
# with an optional counter (`RE[2]:`, `Re(3):`, `Re^2:`) and full-width colons.
_PREFIX = re.compile(
    r"^\s*(?:(?:re|fwd?|fw|aw|wg|tr|sv|vs|antw|rif|r|odp|pd)\s*(?:\[\d+\]|\(\d+\)|\^\d+)?"
    r"\s*[:\uff1a]\s*)+",
    re.IGNORECASE,
)
_MAX_SUBJECT_KEY = 300


def _clean_id(token: str) -> str | None:
    token = _WS.sub("", token)
    if not token or len(token) > _MAX_ID or _BAD_ID_CHAR.search(token):
        return None
    return token


def _scan(value: str) -> tuple[list[str], str]:
    """The bracketed tokens of `value` (outside comments and quoted strings), in order, and
    the text left outside brackets, comments and quotes."""
    tokens: list[str] = []
    outside: list[str] = []
    i, n = 0, len(value)
    while i < n:
        ch = value[i]
        if ch == "<":
            end = value.find(">", i + 1)
            if end < 0:
                outside.append(value[i:])
                break
            tokens.append(value[i + 1 : end])
            outside.append(" ")
            i = end + 1
        elif ch == "(":
            depth = 1
            i += 1
            while i < n and depth:
                c = value[i]
                if c == "\\":
                    i += 1
                elif c in "()":
                    depth += 1 if c == "(" else -1
                i += 1
            outside.append(" ")
        elif ch == '"':
            i += 1
            while i < n and value[i] != '"':
                i += 2 if value[i] == "\\" else 1
            i += 1
            outside.append(" ")
        else:
            outside.append(ch)
            i += 1
    return tokens, "".join(outside)


def _ids(value: str, *, single_bare: bool = False) -> Iterator[str]:
    value = to_text(unfold(value))
    tokens, outside = _scan(value)
    found = False
    for token in tokens:
        cleaned = _clean_id(token)
        if cleaned is not None:
            found = True
            yield cleaned
    if not found:
        # No brackets: bare ids, accepted only when every word is one (has an @), so prose
        # such as `message from joe@example.com of Monday` is never read as an id.
        words = outside.replace(",", " ").split()
        if words and all("@" in word for word in words) and not (single_bare and len(words) > 1):
            for word in words:
                cleaned = _clean_id(word)
                if cleaned is not None:
                    yield cleaned


def normalise_message_id(value: str | None) -> str | None:
    """The first usable id in a Message-ID / In-Reply-To value, without angle brackets
    (`" <abc@host> (comment)"` → `"abc@host"`); a bare `abc@host` (an @, no spaces) is
    accepted. None when there is no usable id. Never raises."""
    if not value or not isinstance(value, str):
        return None
    return next(_ids(value, single_bare=True), None)


def parse_references(value: str | None) -> tuple[str, ...]:
    """Every id in a References value, in order, without brackets or duplicates. Without
    any bracketed id, whitespace-separated bare ids are taken if every word has an @."""
    if not value or not isinstance(value, str):
        return ()
    return tuple(dict.fromkeys(_ids(value)))


def _canonical(value: str) -> bytes:
    text = _WS.sub(" ", to_text(value)).strip()
    return text.encode("utf-8", "surrogatepass")


def fingerprint_id(date: str, from_: str, to: str, subject: str, body: bytes) -> str:
    """A stable stand-in Message-ID, `fp-<32 hex digits>@mailroom.invalid`.

    Pass the raw header values ("" when missing) and the raw body bytes. Header whitespace
    is collapsed and body line endings become LF with trailing blank space dropped, so the
    same message refolded or converted between CRLF and LF gets the same id.
    """
    digest = hashlib.sha256(_FINGERPRINT_VERSION)
    canonical_body = _BODY_NEWLINE.sub(b"\n", bytes(body or b"")).rstrip()
    for part in (
        *(_canonical(field or "") for field in (date, from_, to, subject)),
        canonical_body,
    ):
        digest.update(len(part).to_bytes(8, "big"))  # length-prefixed: no field can bleed
        digest.update(part)
    return f"fp-{digest.hexdigest()[:32]}@{FINGERPRINT_DOMAIN}"


def subject_key(subject: str | None) -> str:
    """The subject as conversations compare it: reply and forward prefixes (`Re:`, `Fwd:`,
    `FW:`, `AW:`, `WG:`, `TR:`, `SV:`, `RE[2]:`…, repeated) stripped, whitespace collapsed,
    case folded; "" when nothing is left (an empty subject groups nothing)."""
    text = _WS.sub(" ", to_text(subject or "")).strip()
    while True:
        stripped = _PREFIX.sub("", text, count=1).strip()
        if stripped == text:
            break
        text = stripped
    return text.casefold()[:_MAX_SUBJECT_KEY]

"""Header-level helpers shared by the full parser and the fast header-only path.

`email.policy.default` decodes headers correctly but builds a parse tree per header and
a message tree per message, which costs milliseconds a message. The sync hot path only
needs a handful of headers, so `split_header_block` cuts the header block out of the raw
bytes the way the stdlib feed parser does (same line splitting, same rules for
continuation lines, envelope `From ` lines and a missing blank line), and `decode_text`
decodes RFC 2047 encoded words the way `policy.default` does (whitespace between adjacent
encoded words dropped, words glued to text still decoded, an unknown charset read as
UTF-8). Keeping these rules in step is what lets `parse_headers` agree with
`parse_message`; the corpus test checks that they do.

Raw header text comes as the stdlib hands it over: bytes decoded as ASCII with
`surrogateescape`, so 8-bit bytes survive as lone surrogates. `to_text` turns those back
into text: as UTF-8 when they are (mostly) UTF-8, as RFC 6532 allows, else as Latin-1.
Inside an encoded word the raw bytes are taken as bytes of the word's charset.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Collection

__all__ = [
    "decode_text",
    "decode_unknown",
    "has_encoded_word",
    "split_header_block",
    "to_text",
    "unfold",
]

_ODD_BREAK = re.compile(r"[\x0b\x0c\x1c-\x1e]")  # str.splitlines breaks there; email does not
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")
_HEADER_LINE = re.compile(r"From |[\041-\071\073-\176]*:|[\t ]")  # feedparser.headerRE
_NEWLINES = re.compile(r"[\r\n]")
_ENCODED_WORD = re.compile(r"=\?([^?\s]*)\?([qQbB])\?([^?]*)\?=")
_Q_ESCAPE = re.compile(rb"=([a-fA-F0-9]{2})")
_SURROGATE = re.compile("[\ud800-\udfff]")
# Where a header block can end: an empty line, whatever the line ending.
_BLANK_LINE = re.compile(rb"\A(?:\r\n|\r|\n)|\n\r?\n|\r\r|\r\n\r\n")


def unfold(value: str) -> str:
    """A raw header value with its line breaks removed (what policy.default does)."""
    return _NEWLINES.sub("", value) if "\n" in value or "\r" in value else value


def to_text(value: str) -> str:
    """Surrogate-escaped 8-bit bytes in `value` read as UTF-8, else as Latin-1."""
    if value.isascii() or not _SURROGATE.search(value):
        return value
    try:
        data = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that is no escaped byte: not from a parser
        return value.encode("utf-8", "replace").decode("utf-8")
    return decode_unknown(data)


def decode_unknown(data: bytes) -> str:
    """Bytes in no known charset: UTF-8 when that is what they mostly are (a name cut in
    the middle of a character is still UTF-8), else Latin-1. Never raises."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    text = data.decode("utf-8", "replace")
    bad = text.count("\ufffd")
    good = sum(1 for ch in text if ch > "\x7f") - bad
    return text if good > bad else data.decode("latin-1")


def _q_decode(text: bytes) -> bytes:
    return _Q_ESCAPE.sub(
        lambda m: bytes.fromhex(m.group(1).decode("ascii")), text.replace(b"_", b" ")
    )


def _b_decode(text: bytes) -> bytes | None:
    pad = len(text) % 4
    try:
        return base64.b64decode(text + b"==="[: 4 - pad] if pad else text, validate=True)
    except binascii.Error:
        pass
    for suffix in (b"", b"=="):
        try:
            return base64.b64decode(text + suffix, validate=False)
        except binascii.Error:
            continue
    return None


def _decode_word(match: re.Match[str]) -> str:
    charset, encoding, encoded = match.groups()
    charset = charset.partition("*")[0]  # RFC 2231 language: =?utf-8*en?q?...?=
    try:  # raw 8-bit bytes inside a word are the charset's bytes: keep them as bytes
        data = encoded.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        data = encoded.encode("utf-8", "surrogatepass")
    decoded = _q_decode(data) if encoding in "qQ" else _b_decode(data)
    if decoded is None:
        return to_text(match.group(0))
    try:
        return decoded.decode(charset, "replace")
    except (LookupError, UnicodeError, ValueError, TypeError):
        return decoded.decode("utf-8", "replace")


def has_encoded_word(value: str) -> bool:
    """Whether `value` still holds an RFC 2047 encoded word."""
    return "=?" in value and _ENCODED_WORD.search(value) is not None


def decode_text(value: str) -> str:
    """An unstructured header value (e.g. Subject) unfolded and RFC 2047-decoded.

    Never raises. An encoded word that cannot be decoded stays as written.
    """
    value = unfold(value)
    if "=?" not in value:
        return to_text(value)
    out: list[str] = []
    last_end = 0
    previous_was_word = False
    for match in _ENCODED_WORD.finditer(value):
        between = value[last_end : match.start()]
        if not (previous_was_word and (between == "" or between.isspace())):
            out.append(to_text(between))
        out.append(_decode_word(match))
        last_end = match.end()
        previous_was_word = True
    out.append(to_text(value[last_end:]))
    return "".join(out)


def split_header_block(
    raw: bytes, names: Collection[str] | None = None
) -> tuple[list[tuple[str, str]], int]:
    """The raw (name, value) header pairs of a message and the offset where its body starts.

    Follows `email.feedparser`: lines end in CRLF, CR or LF; the block ends at an empty
    line or at the first line that is neither a header nor a continuation (the body then
    starts on that line); a leading continuation line is dropped, as is a `From ` line
    (the mbox envelope; as the block's last line it is taken as the body's first) or a
    header line with an empty name. A value keeps its inner line breaks (use `unfold`)
    with leading blanks and the final line break stripped. With `names` (lower-case), only
    those headers are returned, which saves time on long Received chains.
    """
    found = _BLANK_LINE.search(raw)
    text = (raw[: found.end()] if found else raw).decode("ascii", "surrogateescape")
    lines = _LINE.findall(text) if _ODD_BREAK.search(text) else text.splitlines(True)
    pairs: list[tuple[str, str]] = []
    name = ""
    value: list[str] = []  # lines of the current header, when it is one to return
    offset = 0
    envelope_at = -1  # where a `From ` line started, while it is the block's last line
    for lineno, line in enumerate(lines):
        if line[0] in " \t":
            if value:
                value.append(line)
            offset += len(line)
            envelope_at = -1
            continue
        if not _HEADER_LINE.match(line):
            if line in ("\n", "\r\n", "\r"):
                offset += len(line)  # the separator itself is not part of the body
            break
        if value:
            pairs.append(_source_pair(name, value))
            value = []
        envelope_at = -1
        if line.startswith("From "):
            if lineno:
                envelope_at = offset
        else:
            colon = line.find(":")
            if colon > 0:
                name = line[:colon]
                if names is None or name.lower() in names:
                    value = [line]
        offset += len(line)
    if value:
        pairs.append(_source_pair(name, value))
    return pairs, (envelope_at if envelope_at >= 0 else offset)


def _source_pair(name: str, lines: list[str]) -> tuple[str, str]:
    """`EmailPolicy.header_source_parse`: name, value with the first line's blanks stripped."""
    first = lines[0].split(":", 1)[1].lstrip(" \t")
    return name, (first + "".join(lines[1:])).rstrip("\r\n")

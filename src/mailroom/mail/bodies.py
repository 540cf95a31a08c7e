"""Text, HTML and attachments out of a parsed `email.message.Message` tree.

Split from mail.parse to keep each module small. Everything here is defensive: real mail
declares charsets Python has never heard of (`x-unknown`), labels Latin-1 as US-ASCII,
nests multiparts thousands deep and breaks base64. A part that cannot be read is recorded
as a defect and skipped; nothing here raises for a message the stdlib parser accepted.

Rules: the text body is the first non-blank text/plain part that is not an attachment,
the HTML body the first non-blank text/html part that is not an attachment (later inline
text/plain or text/html parts are not kept); both get LF line endings. An attachment is
any other leaf part: one with a filename or `Content-Disposition: attachment`, and every
part of another type (image, PDF, text/calendar, message/delivery-status, ...). A
message/rfc822 part is kept whole as a `.eml` (its insides are not searched for the
body). Attachment names are decoded (RFC 2231 and, leniently, RFC 2047) and reduced to a
plain file name, never a path.

A part's Content-Type and Content-Disposition are read once, from the raw header text,
with the simple compat32 parameter parser (raw 8-bit bytes read as UTF-8 else Latin-1):
`policy.default` would parse them again on every `get_content_type()` /
`get_filename()` call, which made a message with thousands of parts take seconds. At most
MAX_PARTS leaf parts and MAX_DEPTH levels of nesting are read.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import quopri
import re
from dataclasses import dataclass, field
from email import policy
from email.message import Message

from mailroom.mail.headers import decode_text, decode_unknown, to_text, unfold
from mailroom.mail.message import AttachmentInfo
from mailroom.mail.threads import normalise_message_id

__all__ = ["MAX_DEPTH", "MAX_PARTS", "Bodies", "decode_payload", "extract_bodies"]

MAX_DEPTH = 64  # deeper multipart nesting is an attack or a bug, not mail
MAX_PARTS = 1000  # more leaf parts than this: the rest are not read ("TooManyParts")
_ENCLOSED = frozenset({"message/rfc822", "message/global"})
_BODY_TYPES = frozenset({"text/plain", "text/html"})
_ASCII_LABELS = frozenset({"us-ascii", "ascii", "ansi_x3.4-1968", "646", "iso646-us"})
_MIME_HEADERS = ("content-type", "content-disposition", "content-transfer-encoding", "content-id")
_BAD_NAME_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_MIME_TYPES = mimetypes.MimeTypes()  # Python's built-in table only: same names everywhere


@dataclass
class Bodies:
    text: str = ""
    html: str = ""
    attachments: list[AttachmentInfo] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _PartInfo:
    """What the MIME headers of one part say, read once."""

    content_type: str
    disposition: str
    filename: str | None
    charset: str | None
    transfer_encoding: str
    content_id: str | None


def decode_payload(data: bytes, charset: str | None) -> str:
    """Bytes of a text part as text: its charset with replacement characters; an unknown or
    US-ASCII label is read as UTF-8, else Latin-1 (mislabelled 8-bit text is common; see
    headers.decode_unknown)."""
    label = (charset or "").strip().strip("\"'").lower()
    if label and label not in _ASCII_LABELS:
        try:
            return data.decode(label, "replace")
        except (LookupError, ValueError, TypeError):  # unknown, or not a text codec
            pass
    return decode_unknown(data)


def _clean_filename(name: object) -> str | None:
    if not isinstance(name, str) or not name:
        return None
    name = decode_text(name) if "=?" in name else name
    name = _BAD_NAME_CHARS.sub("", name).replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name if name not in ("", ".", "..") else None


def _part_info(part: Message) -> _PartInfo:
    raw: dict[str, str] = {}
    for key, value in part.raw_items():
        name = key.strip().lower()
        if name in _MIME_HEADERS and name not in raw and isinstance(value, str):
            raw[name] = to_text(unfold(value))
    shadow = Message()  # compat32: parameters parsed from the text as it is, in linear time
    shadow.set_default_type(part.get_default_type())  # message/rfc822 inside a digest
    for name in ("content-type", "content-disposition"):
        if name in raw:
            shadow[name] = raw[name]
    try:
        content_type = shadow.get_content_type()
    except Exception:
        content_type = "application/octet-stream"
    try:
        disposition = (shadow.get_content_disposition() or "").lower()
    except Exception:
        disposition = raw.get("content-disposition", "").split(";", 1)[0].strip().lower()
    try:
        filename = _clean_filename(shadow.get_filename())
    except Exception:
        filename = None
    try:
        charset = shadow.get_content_charset()
    except Exception:
        charset = None
    content_id = raw.get("content-id")
    return _PartInfo(
        content_type=content_type,
        disposition=disposition,
        filename=filename,
        charset=charset if isinstance(charset, str) else None,
        transfer_encoding=raw.get("content-transfer-encoding", "").strip().lower(),
        content_id=normalise_message_id(content_id) if content_id else None,
    )


def _enclosed_bytes(part: Message, info: _PartInfo) -> bytes:
    """An enclosed message (or a report's header blocks) as bytes, undoing a base64/QP
    encoding of it (not allowed by RFC 2046, but sent)."""
    payload = part.get_payload()
    chunks: list[bytes] = []
    for inner in payload if isinstance(payload, list) else [payload]:
        if isinstance(inner, Message):
            try:
                chunks.append(inner.as_bytes(policy=policy.compat32))
            except Exception:
                text = inner.as_string(policy=policy.compat32)
                chunks.append(text.encode("utf-8", "surrogateescape"))
        elif isinstance(inner, str):
            chunks.append(inner.encode("utf-8", "surrogateescape"))
    data = b"".join(chunks)
    try:
        if info.transfer_encoding == "base64":
            return base64.b64decode(data, validate=False)
        if info.transfer_encoding == "quoted-printable":
            return quopri.decodestring(data)
    except (binascii.Error, ValueError):
        pass
    return data


def _payload_bytes(part: Message, info: _PartInfo) -> bytes:
    if info.content_type in _ENCLOSED or isinstance(part.get_payload(), list):
        return _enclosed_bytes(part, info)
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _default_name(index: int, ctype: str) -> str:
    if ctype in _ENCLOSED:
        return f"attachment-{index}.eml"
    extension = _MIME_TYPES.guess_extension(ctype, strict=False)
    if extension is None:  # delivery-status, x-diff, ... are text; anything else, bytes
        extension = ".txt" if ctype.startswith(("message/", "text/")) else ".bin"
    return f"attachment-{index}{extension}"


def _leaves(root: Message, out: Bodies) -> list[tuple[Message, _PartInfo]]:
    """Leaf parts (and enclosed messages, not descended into) in document order."""
    leaves: list[tuple[Message, _PartInfo]] = []
    stack: list[tuple[Message, int]] = [(root, 0)]
    while stack:
        part, depth = stack.pop()
        out.defects.extend(type(d).__name__ for d in getattr(part, "defects", ()))
        info = _part_info(part)
        if info.content_type.startswith("message/") or not part.is_multipart():
            if len(leaves) >= MAX_PARTS:
                out.defects.append("TooManyParts")
                break
            leaves.append((part, info))
            continue
        if depth >= MAX_DEPTH:
            out.defects.append("MaxDepthExceeded")
            continue
        children = part.get_payload()
        if isinstance(children, list):
            stack.extend((c, depth + 1) for c in reversed(children) if isinstance(c, Message))
    return leaves


def extract_bodies(msg: Message) -> Bodies:
    """The text body, HTML body, attachments and part-level defects of a message tree."""
    out = Bodies()
    for part, info in _leaves(msg, out):
        try:
            _take(part, info, out)
        except Exception as exc:  # one unreadable part must not lose the others
            out.defects.append(f"PartError:{type(exc).__name__}")
    return out


def _take(part: Message, info: _PartInfo, out: Bodies) -> None:
    ctype = info.content_type
    if ctype.startswith("multipart/"):  # a multipart without parts (no boundary): text
        ctype = "text/plain"
    if info.filename is None and info.disposition != "attachment" and ctype in _BODY_TYPES:
        if ctype == "text/plain" and not out.text.strip():
            out.text = _text(part, info)
        elif ctype == "text/html" and not out.html.strip():
            out.html = _text(part, info)
        return
    data = _payload_bytes(part, info)
    out.attachments.append(
        AttachmentInfo(
            filename=info.filename or _default_name(len(out.attachments) + 1, ctype),
            content_type=ctype,
            size=len(data),
            data=data,
            content_id=info.content_id,
            inline=info.disposition == "inline",
        )
    )


def _text(part: Message, info: _PartInfo) -> str:
    """A body part's text, with line endings made LF."""
    text = decode_payload(_payload_bytes(part, info), info.charset)
    return text.replace("\r\n", "\n") if "\r" in text else text

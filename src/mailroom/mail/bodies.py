"""Text, HTML and attachments out of a parsed `email.message.Message` tree.

Split from mail.parse to keep each module small. Everything here is defensive: real mail
declares charsets Python has never heard of (`x-unknown`), labels Latin-1 as US-ASCII,
nests multiparts thousands deep and breaks base64. A part that cannot be read is recorded
as a defect and skipped; nothing here raises for a message the stdlib parser accepted.

Rules: the text body is the first text/plain part that is not an attachment, the HTML body
the first text/html part that is not an attachment (later inline text/plain or text/html
parts are not kept). An attachment is any leaf part with a filename, a
`Content-Disposition: attachment`, a non-text media type (image, PDF, ...) or a text type
other than plain and HTML (text/calendar, text/x-diff, ...), and every message/rfc822
part, kept whole as a `.eml` (its insides are not searched for the body). Attachment names
are decoded (RFC 2231 and, leniently, RFC 2047) and reduced to a plain file name, never a
path.
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

from mailroom.mail.headers import decode_text
from mailroom.mail.message import AttachmentInfo
from mailroom.mail.threads import normalise_message_id

__all__ = ["Bodies", "decode_payload", "extract_bodies"]

MAX_DEPTH = 64  # deeper multipart nesting is an attack or a bug, not mail
_ATTACHMENT_TYPES = frozenset({"application", "image", "audio", "video", "font", "model"})
_ENCLOSED = frozenset({"message/rfc822", "message/global"})
_BODY_TYPES = frozenset({"text/plain", "text/html"})
_ASCII_LABELS = frozenset({"us-ascii", "ascii", "ansi_x3.4-1968", "646", "iso646-us"})
_BAD_NAME_CHARS = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class Bodies:
    text: str = ""
    html: str = ""
    attachments: list[AttachmentInfo] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)


def decode_payload(data: bytes, charset: str | None) -> str:
    """Bytes of a text part as text: its charset with replacement characters; an unknown or
    US-ASCII label is read as UTF-8, else Latin-1 (mislabelled 8-bit text is common)."""
    label = (charset or "").strip().strip("\"'").lower()
    if label and label not in _ASCII_LABELS:
        try:
            return data.decode(label, "replace")
        except (LookupError, ValueError, TypeError):  # unknown, or not a text codec
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _header(part: Message, name: str) -> str | None:
    """A header of a part as a string, or None; never raises (policy.default can)."""
    try:
        value = part.get(name)
    except Exception:
        raw = next((v for k, v in part.raw_items() if k.lower() == name.lower()), None)
        return decode_text(raw) if isinstance(raw, str) else None
    return None if value is None else str(value)


def _disposition(part: Message) -> str:
    try:
        return (part.get_content_disposition() or "").lower()
    except Exception:
        value = _header(part, "content-disposition") or ""
        return value.split(";", 1)[0].strip().lower()


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:
        return "application/octet-stream"


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:
        return None
    if not name:
        return None
    name = decode_text(name) if "=?" in name else name
    name = _BAD_NAME_CHARS.sub("", name).replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name if name not in ("", ".", "..") else None


def _enclosed_bytes(part: Message) -> bytes:
    """An enclosed message as bytes, undoing a (non-conforming) base64/QP encoding of it."""
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else payload
    if isinstance(inner, Message):
        try:
            data = inner.as_bytes(policy=policy.compat32)
        except Exception:
            data = inner.as_string(policy=policy.compat32).encode("utf-8", "surrogateescape")
    elif isinstance(inner, str):
        data = inner.encode("utf-8", "surrogateescape")
    else:
        return b""
    cte = (_header(part, "content-transfer-encoding") or "").strip().lower()
    try:
        if cte == "base64":
            return base64.b64decode(data, validate=False)
        if cte == "quoted-printable":
            return quopri.decodestring(data)
    except (binascii.Error, ValueError):
        pass
    return data


def _payload_bytes(part: Message, ctype: str) -> bytes:
    if ctype in _ENCLOSED or isinstance(part.get_payload(), list):
        return _enclosed_bytes(part)
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _default_name(index: int, ctype: str) -> str:
    if ctype in _ENCLOSED:
        return f"attachment-{index}.eml"
    return f"attachment-{index}{mimetypes.guess_extension(ctype, strict=False) or '.bin'}"


def _leaves(root: Message, out: Bodies) -> list[tuple[Message, str]]:
    """Leaf parts (and enclosed messages, not descended into) in document order."""
    leaves: list[tuple[Message, str]] = []
    stack: list[tuple[Message, int]] = [(root, 0)]
    while stack:
        part, depth = stack.pop()
        out.defects.extend(type(d).__name__ for d in getattr(part, "defects", ()))
        ctype = _content_type(part)
        if ctype in _ENCLOSED or not part.is_multipart():
            leaves.append((part, ctype))
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
    for part, ctype in _leaves(msg, out):
        try:
            _take(part, ctype, out)
        except Exception as exc:  # one unreadable part must not lose the others
            out.defects.append(f"PartError:{type(exc).__name__}")
    return out


def _take(part: Message, ctype: str, out: Bodies) -> None:
    disposition = _disposition(part)
    filename = _filename(part)
    maintype = ctype.partition("/")[0]
    if maintype == "multipart":  # a multipart without parts (no boundary): read it as text
        ctype = "text/plain"
    is_attachment = (
        filename is not None
        or disposition == "attachment"
        or ctype in _ENCLOSED
        or maintype in _ATTACHMENT_TYPES
        or (maintype == "text" and ctype not in _BODY_TYPES)
    )
    if not is_attachment:
        if ctype == "text/plain" and not out.text:
            out.text = decode_payload(_payload_bytes(part, ctype), _charset(part))
        elif ctype == "text/html" and not out.html:
            out.html = decode_payload(_payload_bytes(part, ctype), _charset(part))
        return
    data = _payload_bytes(part, ctype)
    content_id = _header(part, "content-id")
    out.attachments.append(
        AttachmentInfo(
            filename=filename or _default_name(len(out.attachments) + 1, ctype),
            content_type=ctype,
            size=len(data),
            data=data,
            content_id=normalise_message_id(content_id) if content_id else None,
            inline=disposition == "inline",
        )
    )


def _charset(part: Message) -> str | None:
    try:
        charset = part.get_content_charset()
    except Exception:
        return None
    return charset if isinstance(charset, str) else None

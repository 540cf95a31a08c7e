"""Message builders for tests and benchmarks: real RFC 5322 bytes made with the stdlib,
never pasted mail."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from mailroom.connectors.base import RawMessage

_uids = itertools.count(1)
BASE_DATE = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


def build_message(
    *,
    sender: str = "Jo Client <jo@client.example>",
    to: str = "ann@acme.example",
    cc: str | None = None,
    subject: str = "Quote request",
    body: str = "Hello, could you send a quote?",
    html: str | None = None,
    message_id: str | None = None,
    in_reply_to: str | None = None,
    date: datetime | None = None,
    minutes: int = 0,
    attachment: tuple[str, bytes] | None = None,
) -> bytes:
    """One message as RFC 5322 bytes; each header and part is a keyword (Jo writes to Ann)."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date or BASE_DATE + timedelta(minutes=minutes))
    msg["Message-ID"] = message_id or make_msgid(domain="test.example")
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    msg.set_content(body)
    if html:
        msg.add_alternative(html, subtype="html")
    if attachment:
        name, data = attachment
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return msg.as_bytes()


def raw(
    data: bytes, *, folder: str = "INBOX", uidvalidity: int = 1, uid: int | None = None
) -> RawMessage:
    """`data` as a connector hands it over: a `RawMessage` in `folder`, a fresh UID if none."""
    return RawMessage(folder=folder, uidvalidity=uidvalidity, uid=uid or next(_uids), data=data)

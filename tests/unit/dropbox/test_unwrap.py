"""Unwrapping forwarded mail (dropbox.unwrap): an Outlook inline forward."""

from __future__ import annotations

from mailroom.dropbox.unwrap import unwrap
from mailroom_testing.builders import build_message


def test_an_outlook_inline_forward_unwraps() -> None:
    body = (
        "-----Original Message-----\nFrom: Jo Client [mailto:jo@client.example]\n"
        "Sent: Monday, January 5, 2026 9:30 AM\nTo: Ann <ann@acme.example>\n"
        "Subject: Widgets\nBcc: x\r\nEvil: y\n\nHello\n"
    )
    data = build_message(sender="ann@acme.example", body=body)
    original = unwrap(data)
    assert original is not None
    assert b"From: Jo Client <jo@client.example>" in original
    assert b"Subject: Widgets" in original and b"Evil" not in original.split(b"\r\n\r\n")[0]

"""The SMTP connector's line canonicalisation, without a server (the rest of the connector is
tested against a real SMTP server in tests/integration/outbox/test_smtp_connector.py)."""

from __future__ import annotations

from mailroom.connectors.smtp import canonical_lines


def test_canonical_lines_leaves_no_bare_cr_or_lf() -> None:
    out = canonical_lines(b"a\rb\nc\r\nd\n\re")
    assert out == b"a\r\nb\r\nc\r\nd\r\n\r\ne"
    assert b"\r" not in out.replace(b"\r\n", b"") and b"\n" not in out.replace(b"\r\n", b"")

"""Provider presets (connectors.presets): detected from the host, covering every provider
whose sending limits the outbox enforces."""

from __future__ import annotations

from mailroom.connectors.presets import PRESETS, detect_preset


def test_presets_are_detected_from_the_host_and_cover_the_providers() -> None:
    assert {"gmail", "microsoft365", "outlook", "yahoo", "aol", "icloud", "zoho", "custom"} <= set(
        PRESETS
    )
    assert detect_preset("smtp.gmail.com").name == "gmail"
    assert detect_preset("smtp.office365.com").name == "microsoft365"
    assert detect_preset("smtp.mail.yahoo.com").name == "yahoo"
    assert detect_preset("smtp.zoho.eu").name == "zoho"
    assert detect_preset("mail.example.org").name == "custom"
    assert detect_preset("evilgmail.com").name == "custom"
    assert PRESETS["gmail"].server_saves_sent and not PRESETS["custom"].server_saves_sent


def test_gmail_and_microsoft_365_presets_know_their_imap_pop3_and_smtp_hosts() -> None:
    """Issue 12 §7: one OAuth token signs in to all three, at these hosts and ports."""
    table = {
        name: (
            (p.imap_host, p.imap_port),
            (p.pop3_host, p.pop3_port),
            (p.smtp_host, p.smtp_port, p.smtp_security.value),
        )
        for name, p in PRESETS.items()
        if name in ("gmail", "microsoft365")
    }
    assert table == {
        "gmail": (("imap.gmail.com", 993), ("pop.gmail.com", 995), ("smtp.gmail.com", 465, "ssl")),
        "microsoft365": (
            ("outlook.office365.com", 993),
            ("outlook.office365.com", 995),
            ("smtp.office365.com", 587, "starttls"),
        ),
    }
    for host in ("imap.gmail.com", "pop.gmail.com", "smtp.gmail.com"):
        assert detect_preset(host).name == "gmail"
    for host in ("outlook.office365.com", "smtp.office365.com"):
        assert detect_preset(host).name == "microsoft365"

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

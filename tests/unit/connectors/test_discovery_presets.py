"""The presets discovery uses (connectors/presets.py): addresses at a provider's domains,
MX hosts of Google and Microsoft, and the issue's endpoints (issue 12 items 6 and 7)."""

from __future__ import annotations

import pytest

from mailroom.connectors.base import Security
from mailroom.connectors.presets import PRESETS, preset_for_address, preset_for_mx


@pytest.mark.parametrize(
    ("domain", "name"),
    [
        ("gmail.com", "gmail"),
        ("GoogleMail.com.", "gmail"),
        ("hotmail.com", "outlook"),
        ("yahoo.co.uk", "yahoo"),
        ("me.com", "icloud"),
        ("zohomail.com", "zoho"),
        ("fastmail.fm", "fastmail"),
        ("gmx.de", "gmx"),
        ("aol.com", "aol"),
    ],
)
def test_an_address_at_a_providers_domain_gets_its_preset(domain: str, name: str) -> None:
    preset = preset_for_address(domain)
    assert preset is not None and preset.name == name


def test_a_company_domain_gets_no_preset_by_address() -> None:
    assert preset_for_address("acme.example") is None
    assert preset_for_address("notgmail.com") is None


@pytest.mark.parametrize(
    ("mx", "name"),
    [
        ("aspmx.l.google.com", "gmail"),
        ("alt4.aspmx.l.google.com.", "gmail"),
        ("smtp.google.com", "gmail"),
        ("acme-example.mail.protection.outlook.com", "microsoft365"),
        ("outlook-com.olc.protection.outlook.com", "outlook"),
        ("in1-smtp.messagingengine.com", "fastmail"),
        ("mx01.mail.icloud.com", "icloud"),
    ],
)
def test_a_providers_mx_host_gets_its_preset(mx: str, name: str) -> None:
    preset = preset_for_mx(mx)
    assert preset is not None and preset.name == name


def test_an_mx_host_merely_containing_a_providers_name_gets_none() -> None:
    assert preset_for_mx("google.com.evil.example") is None
    assert preset_for_mx("mx.notgoogle.com") is None


def test_microsoft_and_google_presets_carry_the_issue_endpoints_and_sign_in() -> None:
    m365, gmail = PRESETS["microsoft365"], PRESETS["gmail"]
    assert (m365.imap_host, m365.imap_port, m365.pop3_host, m365.pop3_port) == (
        "outlook.office365.com",
        993,
        "outlook.office365.com",
        995,
    )
    assert (m365.smtp_host, m365.smtp_port, m365.smtp_security) == (
        "smtp.office365.com",
        587,
        Security.STARTTLS,
    )
    assert (gmail.imap_host, gmail.pop3_host, gmail.smtp_host, gmail.smtp_port) == (
        "imap.gmail.com",
        "pop.gmail.com",
        "smtp.gmail.com",
        465,
    )
    assert (m365.oauth, gmail.oauth, PRESETS["outlook"].oauth) == (
        "microsoft",
        "google",
        "microsoft",
    )
    assert PRESETS["yahoo"].oauth is None and PRESETS["custom"].oauth is None


def test_the_custom_preset_names_no_server_so_choosing_it_clears_them() -> None:
    custom = PRESETS["custom"].to_json()
    assert custom["imap"] is None and custom["pop3"] is None and custom["smtp"] is None

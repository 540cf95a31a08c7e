"""Provider presets: where a provider's servers are, and the sending limits it publishes.

Mailroom refuses a send that would break a provider's limit *before* it is attempted, with
the limit named, instead of letting the provider lock the account for a day. The figures
are the providers' published ones (as CRMs that send through the user's mailbox list them,
e.g. SharpSpring's Mail Sync guide, and the providers' own help pages):

| preset       | recipients/message | messages/day | recipients/day | message size |
|--------------|--------------------|--------------|----------------|--------------|
| gmail        | 100 (over SMTP)    | 500          | -              | 25 MB        |
| microsoft365 | 500                | 10,000       | 10,000         | 35 MB        |
| outlook      | 100                | 300          | -              | 20 MB        |
| yahoo        | 100                | 500          | 500            | 25 MB        |
| aol          | 100                | 500          | 500            | 25 MB        |
| icloud       | 500                | 1,000        | 1,000          | 20 MB        |
| zoho         | 150 (external)     | 500          | -              | 20 MB        |
| custom       | 100                | 2,000        | -              | 25 MB        |

Yahoo and AOL count each recipient against the daily figure, hence recipients/day. The
custom default uses RFC 5321 §4.5.3.1.8 (a server must accept at least 100 recipients)
and a size most servers take; a server's own EHLO SIZE (RFC 1870) is checked at send time.

Incoming servers: IMAP on 993 and, where the provider offers it, POP3 on 995, both with
implicit TLS (Gmail: imap.gmail.com, pop.gmail.com; Microsoft 365 and Outlook.com:
outlook.office365.com for both). Sending: Gmail smtp.gmail.com 465 (implicit TLS),
Microsoft 365 smtp.office365.com 587 (STARTTLS). The same OAuth access token signs in to
all three (SASL XOAUTH2, connectors/sasl.py); iCloud offers no POP3.

`server_saves_sent`: Gmail and Exchange Online (Microsoft 365, Outlook.com) put mail
submitted over SMTP into the Sent folder themselves, so Mailroom must not APPEND a second
copy; for every other server Mailroom appends it (IMAP APPEND, RFC 3501 §6.3.11).

Provider discovery (services/discovery.py, `mailroom mailbox discover`) uses the rest:
`email_domains` (an address at one of them gets the preset without any network
lookup), `mx_suffixes` (a domain whose MX host ends so is hosted there: Google Workspace,
Microsoft 365, …), the POP3 endpoint, and `oauth`, the sign-in a provider needs
(`google` or `microsoft`; None: a password or app password). Fastmail and GMX publish no
sending figures that fit these columns; they use the custom defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailroom.connectors.base import Security
from mailroom.errors import BadInput

MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class SendingLimits:
    """A provider's published limits; None means no published limit."""

    recipients_per_message: int
    messages_per_day: int | None
    recipients_per_day: int | None
    message_bytes: int

    def to_json(self) -> dict[str, int | None]:
        """The limits as JSON (None: no limit known)."""
        return {
            "recipients_per_message": self.recipients_per_message,
            "messages_per_day": self.messages_per_day,
            "recipients_per_day": self.recipients_per_day,
            "message_bytes": self.message_bytes,
        }


@dataclass(frozen=True, slots=True)
class ProviderPreset:
    """One provider: its IMAP and SMTP endpoints, its limits, and who keeps the Sent copy."""

    name: str
    label: str
    smtp_host: str | None
    smtp_port: int
    smtp_security: Security
    imap_host: str | None
    imap_port: int
    limits: SendingLimits
    server_saves_sent: bool = False
    host_suffixes: tuple[str, ...] = ()
    imap_security: Security = Security.SSL
    pop3_host: str | None = None
    pop3_port: int = 995
    pop3_security: Security = Security.SSL
    oauth: str | None = None  # "google" | "microsoft": the sign-in the provider needs
    email_domains: tuple[str, ...] = ()  # addresses at these domains use this preset
    mx_suffixes: tuple[str, ...] = ()  # a domain whose MX host ends so is hosted here

    def to_json(self) -> dict[str, Any]:
        """Where the servers are, for discovery's answer (no limits)."""
        return {
            "name": self.name,
            "label": self.label,
            "oauth": self.oauth,
            "imap": _endpoint(self.imap_host, self.imap_port, self.imap_security),
            "pop3": _endpoint(self.pop3_host, self.pop3_port, self.pop3_security),
            "smtp": _endpoint(self.smtp_host, self.smtp_port, self.smtp_security),
        }


def _endpoint(host: str | None, port: int, security: Security) -> dict[str, Any] | None:
    return None if host is None else {"host": host, "port": port, "security": security.value}


PRESETS: dict[str, ProviderPreset] = {
    p.name: p
    for p in (
        ProviderPreset(
            "gmail",
            "Gmail / Google Workspace",
            "smtp.gmail.com",
            465,
            Security.SSL,
            "imap.gmail.com",
            993,
            SendingLimits(100, 500, None, 25 * MB),
            server_saves_sent=True,
            host_suffixes=("gmail.com", "googlemail.com", "google.com"),
            pop3_host="pop.gmail.com",
            oauth="google",
            email_domains=("gmail.com", "googlemail.com"),
            mx_suffixes=("google.com", "googlemail.com"),  # aspmx.l.google.com, smtp.google.com
        ),
        ProviderPreset(
            "microsoft365",
            "Microsoft 365 / Exchange Online",
            "smtp.office365.com",
            587,
            Security.STARTTLS,
            "outlook.office365.com",
            993,
            SendingLimits(500, 10_000, 10_000, 35 * MB),
            server_saves_sent=True,
            host_suffixes=("office365.com", "outlook.office.com"),
            pop3_host="outlook.office365.com",
            oauth="microsoft",
            mx_suffixes=("mail.protection.outlook.com",),  # DOMAIN.mail.protection.outlook.com
        ),
        ProviderPreset(
            "outlook",
            "Outlook.com / Hotmail",
            "smtp-mail.outlook.com",
            587,
            Security.STARTTLS,
            "outlook.office365.com",
            993,
            SendingLimits(100, 300, None, 20 * MB),
            server_saves_sent=True,
            host_suffixes=("outlook.com", "hotmail.com", "live.com"),
            pop3_host="outlook.office365.com",
            oauth="microsoft",
            email_domains=(
                "outlook.com",
                "hotmail.com",
                "live.com",
                "msn.com",
                "hotmail.co.uk",
                "hotmail.fr",
                "hotmail.de",
                "outlook.de",
                "outlook.fr",
                "live.co.uk",
            ),
            mx_suffixes=("olc.protection.outlook.com",),
        ),
        ProviderPreset(
            "yahoo",
            "Yahoo Mail",
            "smtp.mail.yahoo.com",
            465,
            Security.SSL,
            "imap.mail.yahoo.com",
            993,
            SendingLimits(100, 500, 500, 25 * MB),
            host_suffixes=("yahoo.com",),
            pop3_host="pop.mail.yahoo.com",
            email_domains=(
                "yahoo.com",
                "ymail.com",
                "rocketmail.com",
                "yahoo.co.uk",
                "yahoo.fr",
                "yahoo.de",
                "yahoo.es",
                "yahoo.it",
                "yahoo.ca",
                "yahoo.co.jp",
            ),
            mx_suffixes=("yahoodns.net",),
        ),
        ProviderPreset(
            "aol",
            "AOL Mail",
            "smtp.aol.com",
            465,
            Security.SSL,
            "imap.aol.com",
            993,
            SendingLimits(100, 500, 500, 25 * MB),
            host_suffixes=("aol.com",),
            pop3_host="pop.aol.com",
            email_domains=("aol.com", "aim.com"),
        ),
        ProviderPreset(
            "icloud",
            "iCloud Mail",
            "smtp.mail.me.com",
            587,
            Security.STARTTLS,
            "imap.mail.me.com",
            993,
            SendingLimits(500, 1_000, 1_000, 20 * MB),
            host_suffixes=("mail.me.com", "icloud.com"),
            email_domains=("icloud.com", "me.com", "mac.com"),  # iCloud offers no POP3
            mx_suffixes=("mail.icloud.com",),
        ),
        ProviderPreset(
            "zoho",
            "Zoho Mail",
            "smtp.zoho.com",
            465,
            Security.SSL,
            "imap.zoho.com",
            993,
            SendingLimits(150, 500, None, 20 * MB),
            host_suffixes=("zoho.com", "zoho.eu", "zoho.in", "zoho.com.au", "zohomail.com"),
            pop3_host="pop.zoho.com",
            email_domains=("zoho.com", "zohomail.com"),
            mx_suffixes=("zoho.com",),  # mx.zoho.com; regional (zoho.eu) ones differ
        ),
        ProviderPreset(
            "fastmail",
            "Fastmail",
            "smtp.fastmail.com",
            465,
            Security.SSL,
            "imap.fastmail.com",
            993,
            SendingLimits(100, 2_000, None, 25 * MB),
            host_suffixes=("fastmail.com",),
            pop3_host="pop.fastmail.com",
            email_domains=("fastmail.com", "fastmail.fm"),
            mx_suffixes=("messagingengine.com",),
        ),
        ProviderPreset(
            "gmx",
            "GMX",
            "mail.gmx.net",
            587,
            Security.STARTTLS,
            "imap.gmx.net",
            993,
            SendingLimits(100, 2_000, None, 25 * MB),
            host_suffixes=("gmx.net",),
            pop3_host="pop.gmx.net",
            email_domains=("gmx.net", "gmx.de", "gmx.at", "gmx.ch"),
            mx_suffixes=("gmx.net",),
        ),
        ProviderPreset(
            "custom",
            "Any other server",
            None,
            587,
            Security.STARTTLS,
            None,
            993,
            SendingLimits(100, 2_000, None, 25 * MB),
        ),
    )
}

CUSTOM = PRESETS["custom"]


def get_preset(name: str) -> ProviderPreset:
    """The preset called `name`; BadInput naming the known ones otherwise."""
    preset = PRESETS.get(name.strip().lower())
    if preset is None:
        raise BadInput(
            f"Unknown provider preset {name!r}.", hint=f"Use one of: {', '.join(PRESETS)}."
        )
    return preset


def detect_preset(host: str) -> ProviderPreset:
    """The preset whose servers `host` belongs to (by domain suffix), else `custom`."""
    name = host.strip().lower().rstrip(".")
    for preset in PRESETS.values():
        for suffix in preset.host_suffixes:
            if name == suffix or name.endswith("." + suffix):
                return preset
    return CUSTOM


def preset_for_address(domain: str) -> ProviderPreset | None:
    """The preset whose provider hands out addresses at `domain` (gmail.com → gmail)."""
    name = domain.strip().lower().rstrip(".")
    return next((p for p in PRESETS.values() if name in p.email_domains), None)


def preset_for_mx(mx_host: str) -> ProviderPreset | None:
    """The preset whose provider runs the MX host `mx_host` (by domain suffix), or None."""
    name = mx_host.strip().lower().rstrip(".")
    for preset in PRESETS.values():
        for suffix in preset.mx_suffixes:
            if name == suffix or name.endswith("." + suffix):
                return preset
    return None

"""`mailbox add --oauth` server defaults (services/oauth_signin.oauth_servers): each
provider's preset hosts (issue 12 §7), every field overridable, SMTP only when asked for
or when the preset's servers are used."""

from __future__ import annotations

from mailroom.services.mailbox_checks import SmtpInput
from mailroom.services.oauth_signin import oauth_servers


def test_google_defaults_are_gmails_imap_and_smtp_servers() -> None:
    chosen = oauth_servers("google")
    assert (chosen["host"], chosen["port"], chosen["security"]) == ("imap.gmail.com", 993, "ssl")
    smtp = chosen["smtp"]
    assert isinstance(smtp, SmtpInput)
    assert (smtp.host, smtp.port, smtp.security) == ("smtp.gmail.com", 465, "ssl")


def test_microsoft_defaults_are_office365s_servers_and_pop3_uses_995() -> None:
    chosen = oauth_servers("microsoft")
    assert (chosen["host"], chosen["port"]) == ("outlook.office365.com", 993)
    smtp = chosen["smtp"]
    assert isinstance(smtp, SmtpInput)
    assert (smtp.host, smtp.port, smtp.security) == ("smtp.office365.com", 587, "starttls")
    pop = oauth_servers("microsoft", protocol="pop3")
    assert (pop["host"], pop["port"]) == ("outlook.office365.com", 995)
    gpop = oauth_servers("google", protocol="pop3")
    assert (gpop["host"], gpop["port"], gpop["security"]) == ("pop.gmail.com", 995, "ssl")
    gsmtp = gpop["smtp"]
    assert isinstance(gsmtp, SmtpInput) and (gsmtp.host, gsmtp.port) == ("smtp.gmail.com", 465)


def test_a_given_incoming_host_means_no_smtp_unless_an_smtp_host_is_given() -> None:
    local = oauth_servers("google", host="127.0.0.1", port=10993, security="ssl")
    assert (local["host"], local["port"]) == ("127.0.0.1", 10993) and "smtp" not in local
    both = oauth_servers(
        "google", host="127.0.0.1", port=10993, smtp_host="127.0.0.1", smtp_port=1587
    )
    smtp = both["smtp"]
    assert isinstance(smtp, SmtpInput)
    assert (smtp.host, smtp.port, smtp.security, smtp.preset) == ("127.0.0.1", 1587, "ssl", None)

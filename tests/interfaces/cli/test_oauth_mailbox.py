"""`mailroom mailbox add --oauth` and `mailroom mailbox reconnect` through the installed
command, against the local OAuth provider, Dovecot's oauth2 passdb and the aiosmtpd
XOAUTH2 server (issue 12's contract): sign in through the loopback listener, sync across
several access-token lifetimes with rotated refresh tokens kept, a revoked grant shown as
`oauth_revoked` (never an auth failure, never retried), reconnect, send with XOAUTH2, and
no token anywhere in the database files or the outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from mailroom.cli.oauth_flow import SignInTimedOut, _Handler, _Listener, _wait
from mailroom_testing.builders import build_message
from mailroom_testing.dovecot import DovecotServer
from mailroom_testing.oauth_provider import OAuthProvider
from mailroom_testing.smtp import SmtpTestServer

MAILROOM = str(Path(sys.executable).with_name("mailroom"))
PROMPT = "Open this address to sign in: "


class Cli:
    """Runs `mailroom --data-dir DIR …`, keeping every output for the secrecy check."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.outputs: list[str] = []
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}

    def __call__(self, *args: str, stdin: str = "", code: int = 0) -> str:
        result = subprocess.run(
            [MAILROOM, "--data-dir", str(self.data_dir), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=120,
        )
        self.outputs += [result.stdout, result.stderr]
        assert result.returncode == code, (args, result.stdout, result.stderr)
        return result.stdout

    def sign_in(self, *args: str) -> str:
        """Run a command that signs in: read the URL from stderr, visit it like a browser
        (the provider approves and redirects to the CLI's listener); its stdout."""
        proc = subprocess.Popen(
            [MAILROOM, "--data-dir", str(self.data_dir), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if line.startswith(PROMPT):
                break
        url = seen[-1][len(PROMPT) :].strip()
        assert url.startswith("http://127.0.0.1:"), seen
        with urllib.request.urlopen(url, timeout=30) as page:  # follows the redirect
            assert b"Signed in" in page.read()
        out, err = proc.communicate(timeout=120)
        self.outputs += ["".join(seen), out, err]
        assert proc.returncode == 0, (args, out, "".join(seen) + err)
        return out

    def mailbox(self, box: str) -> dict[str, object]:
        (row,) = [r for r in json.loads(self("mailbox", "list", "--json")) if str(r["id"]) == box]
        return row  # type: ignore[no-any-return]


def live_tokens(provider: OAuthProvider) -> set[str]:
    authority = provider.authority
    return set(authority._access) | set(authority._refresh)


def company_with_client(cli: Cli, provider: OAuthProvider, user: str) -> None:
    """A data dir with Acme, its user `user`, and the provider registered as Google."""
    cli("init")
    cli("company", "add", "Acme", "--domain", "acme.example")
    cli("user", "add", user, "--company", "Acme", "--password-stdin", stdin="pw-1234567\n")
    cli(
        "oauth",
        "set",
        "google",
        "--client-id",
        provider.client_id,
        "--client-secret-stdin",
        "--authorize-url",
        provider.authorize_url,
        "--token-url",
        provider.token_url,
        stdin=provider.client_secret + "\n",
    )


def test_oauth_mailbox_signs_in_syncs_refreshes_sends_and_reconnects_after_revocation(
    oauth_provider: OAuthProvider,
    oauth_dovecot: DovecotServer,
    oauth_user: str,
    oauth_smtp: SmtpTestServer,
    tmp_path: Path,
) -> None:
    cli = Cli(tmp_path / "data")
    company_with_client(cli, oauth_provider, oauth_user)
    for n in range(3):
        oauth_dovecot.append(oauth_user, "INBOX", build_message(subject=f"Hello {n}"))
    tokens: set[str] = set()

    box = cli.sign_in(
        "mailbox",
        "add",
        "--user",
        oauth_user,
        "--oauth",
        "google",
        "--host",
        oauth_dovecot.host,
        "--port",
        str(oauth_dovecot.imaps_port),
        "--security",
        "ssl",
        "--smtp-host",
        "127.0.0.1",
        "--smtp-port",
        str(oauth_smtp.starttls_port),
        "--smtp-security",
        "starttls",
        "--allow-self-signed",
        "--no-browser",
    ).strip()
    assert box.isdigit()
    tested = cli("mailbox", "test", box)
    assert "INBOX" in tested and "SMTP: logged in" in tested
    tokens |= live_tokens(oauth_provider)
    assert "3 fetched" in cli("sync", "--once")

    # Several access-token lifetimes: each connection refreshes, the rotated refresh token
    # is stored (the old one is dead at once), and nobody is asked to sign in again.
    for n in range(3):
        oauth_provider.advance(30)
        oauth_dovecot.append(oauth_user, "INBOX", build_message(subject=f"Later {n}"))
        before = oauth_provider.authority.refreshes
        assert "1 fetched" in cli("sync", "--once")
        assert oauth_provider.authority.refreshes > before
        tokens |= live_tokens(oauth_provider)
    assert cli.mailbox(box)["status"] == "ok"

    cli("send", "--mailbox", box, "--to", "jo@client.example", "--subject", "Hi", "--body", "B")
    assert len(oauth_smtp.messages) == 1
    assert oauth_user in oauth_smtp.handler.logins
    tokens |= live_tokens(oauth_provider)

    oauth_provider.revoke_user(oauth_user)
    oauth_provider.advance(30)
    cli("sync", "--once", code=2)
    errors = json.loads(cli("mailbox", "errors", box, "--json"))
    assert errors["errors"][0]["kind"] == "oauth_revoked"
    assert f"mailroom mailbox reconnect {box} " in errors["errors"][0]["hint"]
    row = cli.mailbox(box)
    assert row["error_kind"] == "oauth_revoked" and row["auth_failures"] == 0
    spent = oauth_provider.authority.refreshes
    cli("sync", "--once")  # the dead grant is not tried again: it waits for a sign-in
    cli("sync", "--once")
    assert oauth_provider.authority.refreshes == spent
    assert len(json.loads(cli("mailbox", "errors", box, "--json"))["errors"]) == 1

    assert cli.sign_in("mailbox", "reconnect", box, "--no-browser").strip() == box
    tokens |= live_tokens(oauth_provider)
    oauth_dovecot.append(oauth_user, "INBOX", build_message(subject="After reconnect"))
    # the new message, and the Sent copy the outbox saved over IMAP with a token
    assert "2 fetched, 1 new messages" in cli("sync", "--once")
    row = cli.mailbox(box)
    assert row["status"] == "ok" and row["error_kind"] is None

    assert tokens
    stored = b"".join(
        p.read_bytes() for p in cli.data_dir.iterdir() if p.name.startswith("mailroom.sqlite3")
    )
    assert stored
    for token in tokens:
        assert token.encode() not in stored
        assert all(token not in text for text in cli.outputs)


def test_a_sign_in_whose_login_fails_saves_nothing_and_says_why(
    oauth_provider: OAuthProvider,
    oauth_dovecot: DovecotServer,
    oauth_user: str,
    tmp_path: Path,
) -> None:
    cli = Cli(tmp_path / "data")
    company_with_client(cli, oauth_provider, oauth_user)
    args = ("mailbox", "add", "--user", oauth_user, "--host", oauth_dovecot.host)
    port = ("--port", str(oauth_dovecot.pop3s_port), "--allow-self-signed", "--no-browser")
    failed = subprocess.run(
        [MAILROOM, "--data-dir", str(cli.data_dir), *args, "--oauth", "yahoo", *port],
        capture_output=True,
        text=True,
        env=cli.env,
        timeout=60,
    )
    assert failed.returncode == 1 and "Unknown OAuth provider" in failed.stderr
    proc = subprocess.Popen(
        [MAILROOM, "--data-dir", str(cli.data_dir), *args, "--oauth", "google", *port],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli.env,
    )
    assert proc.stderr is not None
    url = proc.stderr.readline()[len(PROMPT) :].strip()
    with urllib.request.urlopen(url, timeout=30) as page:
        page.read()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, (out, err)  # an IMAP login at a POP3 port: a server error
    assert out == "" and err.strip()
    assert json.loads(cli("mailbox", "list", "--json")) == []
    for token in live_tokens(oauth_provider):
        assert token not in out + err


def test_nobody_signing_in_in_time_is_a_user_error_exit_1() -> None:
    with _Listener(("127.0.0.1", 0), _Handler) as listener, pytest.raises(SignInTimedOut) as err:
        _wait(listener, 0.5)
    assert err.value.exit_code == 1 and "Run the command again" in (err.value.hint or "")

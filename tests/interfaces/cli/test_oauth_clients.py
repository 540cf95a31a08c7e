"""`mailroom oauth set|list` through the installed command (issue 12's contract): the secret
comes on stdin, is stored encrypted (absent from the database file and every output), and
endpoint overrides must be https except on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

MAILROOM = str(Path(sys.executable).with_name("mailroom"))
SECRET = "GOCSPX-very-secret-client-value"


def run(data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
    return subprocess.run(
        [MAILROOM, "--data-dir", str(data_dir), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_oauth_set_then_list_shows_the_clients_and_never_the_secret(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run(data, "init").returncode == 0
    outputs: list[str] = []
    google = run(
        data,
        "oauth",
        "set",
        "google",
        "--client-id",
        "g-id",
        "--client-secret-stdin",
        stdin=SECRET + "\n",
    )
    microsoft = run(
        data,
        "oauth",
        "set",
        "microsoft",
        "--client-id",
        "m-id",
        "--client-secret-stdin",
        "--authorize-url",
        "http://127.0.0.1:8555/authorize",
        "--token-url",
        "http://[::1]:8555/token",
        stdin=SECRET + "-m\n",
    )
    listed = run(data, "oauth", "list", "--json")
    plain = run(data, "oauth", "list")
    for result in (google, microsoft, listed, plain):
        assert result.returncode == 0, result.stderr
        outputs += [result.stdout, result.stderr]
    rows = json.loads(listed.stdout)
    assert [(r["provider"], r["client_id"], r["custom_endpoints"]) for r in rows] == [
        ("google", "g-id", False),
        ("microsoft", "m-id", True),
    ]
    assert rows[0]["token_url"] == "https://oauth2.googleapis.com/token"
    assert rows[1]["authorize_url"] == "http://127.0.0.1:8555/authorize"
    assert rows[1]["token_url"] == "http://[::1]:8555/token"
    assert all(SECRET not in text for text in outputs)
    stored = b"".join(
        p.read_bytes() for p in data.iterdir() if p.name.startswith("mailroom.sqlite3")
    )
    assert stored and SECRET.encode() not in stored


def test_oauth_set_refuses_plain_http_off_loopback_and_a_missing_secret(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run(data, "init").returncode == 0
    http = run(
        data,
        "oauth",
        "set",
        "google",
        "--client-id",
        "g",
        "--client-secret-stdin",
        "--token-url",
        "http://login.example/token",
        stdin=SECRET + "\n",
    )
    assert http.returncode == 1 and "not https" in http.stderr
    empty = run(data, "oauth", "set", "google", "--client-id", "g", "--client-secret-stdin")
    assert empty.returncode == 1 and "client secret" in empty.stderr.lower()
    unknown = run(
        data,
        "oauth",
        "set",
        "yahoo",
        "--client-id",
        "g",
        "--client-secret-stdin",
        stdin=SECRET + "\n",
    )
    assert unknown.returncode == 1 and "google or microsoft" in unknown.stderr
    assert json.loads(run(data, "oauth", "list", "--json").stdout) == []

"""`mailroom serve` starts on a fresh data dir, answers on HTTP and on its drop-address SMTP
port, and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

MAILROOM = str(Path(sys.executable).with_name("mailroom"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_runs_on_a_fresh_data_dir_and_stops_on_sigterm(tmp_path: Path) -> None:
    port, smtp_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
    env["MAILROOM_DATA_DIR"] = str(tmp_path / "data")
    proc = subprocess.Popen(
        [MAILROOM, "serve", "--port", str(port), "--smtp-port", str(smtp_port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        health = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    health = json.loads(r.read())
                break
            except OSError:
                time.sleep(0.2)
        assert health is not None, proc.stdout.read() if proc.stdout else ""
        assert health["status"] == "ok"
        assert (tmp_path / "data" / "mailroom.sqlite3").exists()
        assert (tmp_path / "data" / "secret.key").stat().st_mode & 0o777 == 0o600
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as smtp:
            code, features = smtp.ehlo()
            assert code == 250 and b"STARTTLS" in features
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0

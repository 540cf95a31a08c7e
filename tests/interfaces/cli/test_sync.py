"""The sync CLI's progress display and the mailbox summary's progress and hint fields, and
a Gmail mailbox paused over its download quota as `sync --once` and `mailbox list` show it."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from mailroom.app import App
from mailroom.cli.sync import _Bars
from mailroom.sync.engine import ProgressEvent, sync_mailbox
from mailroom_testing.builders import build_message
from mailroom_testing.dovecot import DovecotServer
from mailroom_testing.gmail_proxy import GmailProxy
from tests.helpers.mailbox_state import run_cli
from tests.helpers.sync_support import connect_mailbox, seed, through


def test_progress_bar_shows_done_of_total_messages_and_bytes() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, color_system=None)
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console
    )
    bars = _Bars(progress)
    with progress:
        bars(ProgressEvent(7, "INBOX", 50, 200, 3 * 2**20, 12 * 2**20))
        bars(ProgressEvent(7, "INBOX", 200, 200, 12 * 2**20, 12 * 2**20))
    text = out.getvalue()
    assert "Mailbox 7 INBOX (12.0/12.0 MiB)" in text and "200/200" in text


def test_mailbox_list_json_carries_progress_and_since(
    sqlite_app: App,
    dovecot: DovecotServer,
    imap_user: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed(dovecot, imap_user[0], "INBOX", 3)
    box = connect_mailbox(sqlite_app, dovecot, imap_user)
    assert sync_mailbox(sqlite_app, box).error is None
    capsys.readouterr()
    assert run_cli(sqlite_app, monkeypatch, "mailbox", "list", "--json") == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["status"] == "ok" and row["progress"]["done"] == row["progress"]["total"] == 3
    assert run_cli(sqlite_app, monkeypatch, "sync", "--once") == 0
    assert "0 fetched" in capsys.readouterr().out


def test_a_gmail_mailbox_over_its_download_quota_shows_paused_with_the_resume_time(
    sqlite_app: App,
    gmail: GmailProxy,
    imap_user: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    login = imap_user[0]
    gmail.prepare(login)
    for n in range(3):
        gmail.deliver(login, build_message(subject=f"Over {n}", minutes=n), ["\\Inbox"])
    box = connect_mailbox(sqlite_app, gmail.dovecot, imap_user)
    through(sqlite_app, box, gmail.port)
    gmail.daily_quota = 0  # used up before the first body

    assert run_cli(sqlite_app, monkeypatch, "sync", "--once") == 0, "a pause is no error"
    said = " ".join(capsys.readouterr().out.split())
    assert f"Mailbox {box}: paused until" in said and "download limit" in said
    assert run_cli(sqlite_app, monkeypatch, "mailbox", "list", "--json") == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["status"] == "paused" and row["error_kind"] == "bandwidth_limit"
    assert row["status_words"].startswith("Paused") and "resumes at" in row["status_words"]
    assert row["next_attempt_at"] and row["auth_failures"] == 0

    assert run_cli(sqlite_app, monkeypatch, "sync", "--once") == 0
    assert "skipped, paused" in capsys.readouterr().out

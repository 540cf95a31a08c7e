"""Peak memory of `mailroom sync --once` against hostile servers, as ratios to an idle one.

    .venv/bin/python bench/bench_hostile.py [--limit-mb 1024]

Issue 11, item 6: an endless `* LIST` answer grew `sync --once` to 5.1 GB. Each scenario
runs `mailroom sync --once` as a fresh process (peak RSS from GNU time, as
bench_startup.py) against mailroom_testing's scripted hostile server on 127.0.0.1:

- `idle`: an empty INBOX (the baseline, measured in the same run);
- `endless LIST`: `* LIST` lines until the client hangs up (at most --limit-mb MB);
- `giant literal`: a FETCH announcing a 3 GiB BODY[] literal (sends at most --limit-mb MB);
- `garbage numbers`: EXAMINE with `UIDNEXT abc`.

Each hostile run must exit 2 (a server's fault, the CLI contract) with a clear error; the
table shows each peak RSS and its ratio to `idle`. Writes bench/results/hostile.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._meta import write_result  # noqa: E402
from mailroom_testing.builders import build_message  # noqa: E402
from mailroom_testing.hostile_server import (  # noqa: E402
    Answer,
    HostileServer,
    answer_lines,
    endless_list,
    giant_literal,
)

MESSAGE = build_message(sender="jo@client.example", to="ann@acme.example", subject="Hi")


def one_message() -> dict[str, Answer]:
    """STATUS and EXAMINE of an INBOX holding one message."""
    return {
        "STATUS": answer_lines(
            b'* STATUS "INBOX" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY 7)', b"{tag} OK done"
        ),
        "EXAMINE": answer_lines(
            b"* 1 EXISTS", b"* OK [UIDVALIDITY 7] ok", b"* OK [UIDNEXT 2] ok", b"{tag} OK done"
        ),
    }


def scenarios(limit: int) -> dict[str, dict[str, Answer]]:
    """Scenario name → the scripted answers of its server."""
    literal = giant_literal(3 << 30, limit=limit)
    sizes = answer_lines(b"* 1 FETCH (UID 1 RFC822.SIZE 100)", b"{tag} OK done")

    def fetch(tag: bytes, args: bytes) -> Iterator[bytes]:
        return iter((literal if b"BODY.PEEK[]" in args else sizes)(tag, args))

    garbage = one_message()
    garbage["EXAMINE"] = answer_lines(
        b"* 1 EXISTS", b"* OK [UIDVALIDITY 7] ok", b"* OK [UIDNEXT abc] ok", b"{tag} OK done"
    )
    return {
        "idle": {},
        "endless LIST": {"LIST": endless_list(limit=limit)},
        "giant literal": {**one_message(), "UID FETCH": fetch},
        "garbage numbers": garbage,
    }


def run(cmd: list[str], env: dict[str, str], stdin: str = "") -> tuple[int, float, str]:
    """Exit code, peak RSS (MiB, GNU time) and stderr of one command."""
    with tempfile.NamedTemporaryFile("r") as rss:
        proc = subprocess.run(
            ["/usr/bin/time", "-q", "-f", "%M", "-o", rss.name, *cmd],
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
        )
        kib = int(rss.read().split()[-1])
    return proc.returncode, kib / 1024, proc.stderr


def measure(name: str, script: dict[str, Answer], root: Path) -> tuple[int, float, str]:
    """`mailroom sync --once` of a fresh data dir whose one mailbox is this server (the
    script applies from the sync on)."""
    mailroom = str(Path(sys.executable).with_name("mailroom"))
    env = {**os.environ, "MAILROOM_DATA_DIR": str(root / name.replace(" ", "-"))}
    env.pop("MAILROOM_DATABASE_URL", None)
    with HostileServer() as server:
        setup = [
            ["init"],
            ["company", "add", "Acme", "--domain", "acme.example"],
            ["user", "add", "ann@acme.example", "--company", "Acme"],
        ]
        for args in setup:
            subprocess.run([mailroom, *args], env=env, check=True, capture_output=True)
        add = [
            "mailbox",
            "add",
            "--user",
            "ann@acme.example",
            "--host",
            server.host,
            "--port",
            str(server.port),
            "--security",
            "none",
            "--password-stdin",
        ]
        # added while the server still behaves (`mailbox add` logs in and lists folders)
        subprocess.run([mailroom, *add], env=env, input="pw\n", text=True, check=True)
        for command, answer in script.items():
            server.on(command, answer)
        return run([mailroom, "sync", "--once"], env)


def main() -> None:
    """Run every scenario, print the table, write bench/results/hostile.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit-mb", type=int, default=1024)
    limit = parser.parse_args().limit_mb << 20
    rows: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, script in scenarios(limit).items():
            code, mib, err = measure(name, script, Path(tmp))
            error = next((ln.strip() for ln in err.splitlines() if "Mailbox" in ln), "")
            rows[name] = {"exit": code, "peak_rss_mib": round(mib, 1), "error": error}
    base = float(rows["idle"]["peak_rss_mib"])  # type: ignore[arg-type]
    print(f"{'scenario':<16} {'exit':>4} {'peak RSS':>9} {'ratio':>6}  error")
    for name, row in rows.items():
        mib = float(row["peak_rss_mib"])  # type: ignore[arg-type]
        row["ratio_to_idle"] = round(mib / base, 2)
        print(f"{name:<16} {row['exit']:>4} {mib:>7.1f}MB {mib / base:>6.2f}  {row['error'][:90]}")
    write_result("hostile", {"limit_bytes": limit, "scenarios": rows})


if __name__ == "__main__":
    main()

"""Start-up benchmark: how long a `mailroom` command takes against a bare Python start.

    .venv/bin/python bench/bench_startup.py [--runs 10] [--messages 10000]

Every figure is the median of N runs of a fresh process, printed as a ratio against
`python -c pass` of the same interpreter measured in the same run, interleaved with it
(one round runs every command once), so a busy machine slows all alike. Targets (issue
10): `mailroom --help` at most 10x, `mailroom timeline ADDRESS --json` on a
10,000-message database at most 30x, a no-change `mailroom sync --once` of one mailbox
(real Dovecot, already synced) at most 40x.

What it sets up (in temporary directories, removed afterwards):

1. a private Dovecot (mailroom_testing.dovecot, the test suite's harness) whose user's INBOX holds
   N generated messages (bench/gen_mailbox.py, as bench/sync_bench.py);
2. a data dir with one company, its user and that mailbox, synced once by
   `mailroom sync --once` (the real fetch, parse, store and match: an N-message
   database), then a contact for the busiest correspondent, added by `mailroom records
   add` (which links its mail): ADDRESS of the timeline;
3. then measures `python -c pass`, `mailroom --help`, `mailroom timeline ADDRESS --json`,
   `mailroom sync --once` (nothing new on the server) and a fetch worker's imports
   (`import mailroom.sync.fetch_worker, mailroom.connectors.imap`, what a worker process
   loads before it fetches), each with its peak RSS (wait4's ru_maxrss).

Prints a table and writes bench/results/startup.json (with the commit and versions).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._meta import write_result  # noqa: E402
from bench.gen_mailbox import fill  # noqa: E402
from mailroom_testing.dovecot import DovecotServer  # noqa: E402

USER, PASSWORD = "bench", "bench-password-1"
TARGETS = {"--help": 10.0, "timeline --json": 30.0, "sync --once (no change)": 40.0}
WORKER_IMPORTS = "import mailroom.sync.fetch_worker, mailroom.connectors.imap"


def run_once(cmd: list[str], env: dict[str, str]) -> tuple[float, float, bytes]:
    """Wall seconds, peak RSS (MB) and stdout of one run of `cmd`; it must succeed.

    RSS comes from GNU time's %M (the child of a small process: a child forked from this
    one would count this process's memory in its ru_maxrss); every command, the bare
    `python -c pass` included, pays the same extra fork."""
    with tempfile.NamedTemporaryFile("r") as rss_file:
        start = time.perf_counter()
        proc = subprocess.run(
            ["/usr/bin/time", "-q", "-f", "%M", "-o", rss_file.name, *cmd],
            env=env,
            capture_output=True,
        )
        seconds = time.perf_counter() - start
        out, err = proc.stdout, proc.stderr
        rss_kib = int(rss_file.read().split()[-1]) if proc.returncode == 0 else 0
    if proc.returncode != 0:
        raise SystemExit(
            f"{' '.join(cmd)} failed ({proc.returncode}): {out[-2000:]!r}{err[-2000:]!r}"
        )
    return seconds, rss_kib / 1024, out


def mailroom(*args: str) -> list[str]:
    """The installed console script, as an operator runs it."""
    return [str(Path(sys.executable).with_name("mailroom")), *args]


def setup(dovecot: DovecotServer, data: Path, count: int) -> tuple[dict[str, str], str]:
    """An N-message data dir synced from Dovecot; its env and the timeline's ADDRESS."""
    dovecot.add_user(USER, PASSWORD)
    dovecot.session(USER)  # creates the home and Maildir
    maildir = dovecot.root / "mail" / USER / "Maildir"
    started = time.monotonic()
    size = fill(maildir, owner=f"{USER}@acme.example", count=count)
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", f"{dovecot.mail_user}:", str(maildir)], check=True)
    dovecot.doveadm("mailbox", "status", "-u", USER, "messages", "INBOX")  # index once
    print(
        f"generated {count} messages, {size / 2**20:.0f} MiB in {time.monotonic() - started:.0f} s"
    )

    env = dict(os.environ, MAILROOM_DATA_DIR=str(data), COLUMNS="100")
    from mailroom.app import open_app
    from mailroom.config import load_settings
    from mailroom.crm.companies import add_company, add_user
    from mailroom.db.engine import transaction
    from mailroom.mailboxes.store import add_mailbox
    from mailroom.security.secrets import create_key_file

    settings = load_settings(data)
    create_key_file(settings.key_path)
    app = open_app(settings)
    with transaction(app.sessions) as session:
        company = add_company(session, name="Acme", domains=["acme.example"])
        user = add_user(session, company=company, email=f"{USER}@acme.example")
        add_mailbox(
            session,
            app.secrets,
            user=user,
            host=dovecot.host,
            port=dovecot.imap_port,
            password=PASSWORD,
            security="none",
            username=USER,
            folders=["INBOX"],
        )
    started = time.monotonic()
    run_once(mailroom("sync", "--once"), env)
    print(f"initial sync: {time.monotonic() - started:.1f} s")
    address = busiest_correspondent(app)
    app.close()
    run_once(
        mailroom(
            "records",
            "add",
            "--company",
            "Acme",
            "--type",
            "contact",
            "--name",
            "Busiest",
            "--email",
            address,
        ),
        env,
    )
    return env, address


def busiest_correspondent(app: object) -> str:
    """The outside address on the most messages (a read of what the sync stored)."""
    from sqlalchemy import func, select

    from mailroom.db.models import MessageAddress

    count = func.count(MessageAddress.message_id)
    query = (
        select(MessageAddress.address)
        .where(MessageAddress.address.not_like("%@acme.example"))
        .group_by(MessageAddress.address)
        .order_by(count.desc(), MessageAddress.address)
        .limit(1)
    )
    with app.engine.connect() as conn:  # type: ignore[attr-defined]
        return str(conn.scalar(query))


def measure(commands: dict[str, list[str]], env: dict[str, str], runs: int) -> dict[str, dict]:
    """Median wall time and peak RSS of each command over `runs` interleaved rounds."""
    for cmd in commands.values():  # warm the page cache and .pyc files; not counted
        run_once(cmd, env)
    seconds: dict[str, list[float]] = {name: [] for name in commands}
    rss: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, cmd in commands.items():
            wall, peak, _ = run_once(cmd, env)
            seconds[name].append(wall)
            rss[name].append(peak)
    base = statistics.median(seconds["python -c pass"])
    return {
        name: {
            "median_ms": statistics.median(seconds[name]) * 1000,
            "min_ms": min(seconds[name]) * 1000,
            "max_ms": max(seconds[name]) * 1000,
            "ratio": statistics.median(seconds[name]) / base,
            "peak_rss_mb": statistics.median(rss[name]),
            "command": " ".join(
                Path(commands[name][0]).name if i == 0 else a for i, a in enumerate(commands[name])
            ),
        }
        for name in commands
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="rounds (median over them)")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument(
        "--keep", type=Path, help="keep the synced data dir here (for profiling a command)"
    )
    parser.add_argument(
        "--name",
        default="startup",
        help="result name: writes bench/results/NAME.json (default startup)",
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="mailroom-startup-"))
    work = Path(tempfile.mkdtemp(prefix="mailroom-startup-work-"))
    dovecot = DovecotServer(root)  # mkdtemp: traversable by the mail user
    dovecot.start()
    try:
        env, address = setup(dovecot, work / "data", args.messages)
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "--help": mailroom("--help"),
            "timeline --json": mailroom("timeline", address, "--json"),
            "sync --once (no change)": mailroom("sync", "--once"),
            "fetch worker imports": [sys.executable, "-c", WORKER_IMPORTS],
        }
        entries = len(json.loads(run_once(commands["timeline --json"], env)[2]))
        results = measure(commands, env, args.runs)
    finally:
        dovecot.stop()
        if args.keep:
            shutil.rmtree(args.keep, ignore_errors=True)
            shutil.move(work / "data", args.keep)
            print(f"kept the data dir in {args.keep} (its mailbox's server is gone)")
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{args.runs} runs each, medians; timeline of {address}: {entries} messages")
    print(f"{'command':26} {'median':>9} {'ratio':>7} {'target':>7} {'RSS':>7}")
    for name, value in results.items():
        target = TARGETS.get(name)
        mark = "" if target is None else ("  ok" if value["ratio"] <= target else "  OVER")
        print(
            f"{name:26} {value['median_ms']:7.0f} ms {value['ratio']:6.1f}x "
            f"{f'{target:.0f}x' if target else '':>7} {value['peak_rss_mb']:4.0f} MB{mark}"
        )
    from importlib.util import find_spec

    package = find_spec("mailroom")
    write_result(
        args.name,
        {
            # PYTHONPATH can point the commands at another tree (a baseline's export)
            "mailroom_from": str(Path(str(package.origin)).parent) if package else None,
            "runs": args.runs,
            "messages": args.messages,
            "timeline_entries": entries,
            "targets": TARGETS,
            "results": results,
        },
    )


if __name__ == "__main__":
    main()

"""Benchmark: IDLE-watched mailboxes on one `mailroom worker` (issue 14, item 4).

For each size N (default 100 and 300; `--mailboxes 100 500 1000`), in one run against a
private Dovecot (its process limits raised below) and a fresh PostgreSQL database:

1. N users, each with one message in INBOX and an empty Sent; N mailboxes in Mailroom;
2. one `mailroom worker --concurrency 8` syncs them all (queued by its tick, every
   `--tick` seconds), then
   watches INBOX and Sent of each with IDLE: 2N connections (decision 0031: one selector
   thread and a pool of 32 for the blocking steps); with `--before SRC` the same N again
   with another `src/` tree first on the worker's PYTHONPATH (`git archive ab88f50 src |
   tar -x -C DIR`: a thread per watched folder), so both models are measured in one run;
3. once every watcher is connected: the worker's RSS and thread count, its CPU while
   idle over 10 s, then `--samples` deliveries (APPEND to a random mailbox's INBOX, one
   at a time) and the latency from the APPEND until the message is stored (what the
   timeline shows), p50 and p99.

Writes bench/results/idle-workers.json (bench/_meta.py) and prints a table; compare sizes
as ratios within one run. The issue's target: 1,000 per worker, p50 < 3 s, RSS < 600 MB.

Each imap process of Dovecot holds an inotify instance while it IDLEs; the bench raises
the kernel's per-user limit (`fs.inotify.max_user_instances`, 128 here) to 4N + 512 when
it may (root), since Dovecot falls back to polling every 30 s without one, which would be
measured as push latency.

Run:  .venv/bin/python bench/bench_idle_workers.py [--mailboxes 100 300] [--samples 20]
          [--before DIR/src] [--tick 1]

`--tick` is the worker's MAILROOM_JOBS_TICK (default 1, as in the first runs; the
product's default is 5).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._meta import write_result
from bench._pg import temporary_pg
from mailroom.app import App, open_app
from mailroom.config import Settings
from mailroom.crm.companies import add_company, add_user
from mailroom.db.engine import transaction
from mailroom.db.models import Mailbox, Message
from mailroom.mailboxes.store import add_mailbox
from mailroom.security.secrets import encode_key, new_key
from mailroom_testing.builders import build_message
from mailroom_testing.dovecot import DovecotServer

PG_ADMIN = os.environ.get("MAILROOM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
LIMITS = """
service imap {
  process_limit = 5000
  client_limit = 1
}
service imap-login {
  process_limit = 200
  client_limit = 1000
  service_count = 0
}
default_process_limit = 5000
default_client_limit = 20000
mail_max_userip_connections = 50
"""


class BigDovecot(DovecotServer):
    """The test Dovecot with room for thousands of IMAP connections."""

    def _render_config(self) -> None:
        super()._render_config()
        with self.config_path.open("a") as conf:
            conf.write(LIMITS)


def proc_status(pid: int) -> tuple[int, int]:
    """(RSS in bytes, threads) of a process."""
    text = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+) kB", text).group(1)) * 1024  # type: ignore[union-attr]
    threads = int(re.search(r"Threads:\s+(\d+)", text).group(1))  # type: ignore[union-attr]
    return rss, threads


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sockets(pid: int) -> int:
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            count += os.readlink(fd).startswith("socket:")
    return count


def stop_processes(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each still running (a worker hands its batch back), then wait; SIGKILL
    what has not stopped after 120 s."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait(what: str, check: Any, timeout: float) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise SystemExit(f"timed out waiting until {what}")
        time.sleep(0.1)
    return time.monotonic() - start


def setup(app: App, dovecot: DovecotServer, n: int) -> list[tuple[int, str]]:
    """N users with one message each, and their mailboxes: [(mailbox id, login)]."""
    boxes = []
    with transaction(app.sessions) as session:
        company = add_company(session, name=f"Bench{n}", domains=["acme.example"])
        for i in range(n):
            login, password = f"idle{n}-{i}-{secrets.token_hex(2)}", secrets.token_urlsafe(12)
            dovecot.add_user(login, password)
            dovecot.append(login, "INBOX", build_message(sender="jo@client.example", minutes=i))
            user = add_user(session, company=company, email=f"u{n}-{i}@acme.example")
            box = add_mailbox(
                session,
                app.secrets,
                user=user,
                host=dovecot.host,
                port=dovecot.imaps_port,
                password=password,
                username=login,
                allow_self_signed=True,
            )
            session.flush()
            boxes.append((box.id, login))
    for conn in list(dovecot._sessions.values()):  # the seeding sessions: not watchers
        conn.logout()
    dovecot._sessions.clear()
    return boxes


def stored(app: App, message_id: str) -> bool:
    with app.sessions() as session:
        found = session.scalar(select(Message.id).where(Message.message_id == message_id))
        return found is not None


def raise_inotify_limit(n: int) -> int:
    """Make room for an inotify instance per Dovecot imap process; the limit in force."""
    path = Path("/proc/sys/fs/inotify/max_user_instances")
    current = int(path.read_text())
    wanted = 4 * n + 512
    if current < wanted:
        try:
            path.write_text(str(wanted))
        except OSError as exc:
            print(f"cannot raise {path} to {wanted} ({exc}): pushes may wait 30 s", flush=True)
    return int(path.read_text())


def run_size(
    dovecot: DovecotServer,
    n: int,
    samples: int,
    work: Path,
    src: Path | None = None,
    tick: int = 1,
) -> dict[str, Any]:
    url, drop = temporary_pg(PG_ADMIN, f"idle_{n}")
    key = encode_key(new_key())
    settings = Settings(
        data_dir=work / f"data-{n}", database_url=url, secret_key_b64=key, allow_private_hosts=True
    )
    app = open_app(settings)
    proc = None
    try:
        boxes = setup(app, dovecot, n)
        env = dict(
            os.environ,
            MAILROOM_SECRET_KEY=key,
            MAILROOM_DATABASE_URL=url,
            MAILROOM_POLL_INTERVAL="3600",
            MAILROOM_JOBS_TICK=str(tick),
        )
        if src is not None:
            env["PYTHONPATH"] = str(src)
        argv = [sys.executable, "-c", "from mailroom.cli import main; main()", "-v"]
        argv += ["--data-dir", str(settings.data_dir), "worker", "--concurrency", "8"]
        log = (work / f"worker-{n}{'-before' if src else ''}.log").open("wb")
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)

        def all_synced() -> bool:
            with app.sessions() as session:
                statuses = list(session.scalars(select(Mailbox.status)))
            return statuses.count("ok") == n

        synced_in = wait("every mailbox synced once", all_synced, 60 + n * 2.0)
        connected_in = wait(
            "every watcher connected", lambda: sockets(proc.pid) >= 2 * n, 60 + n * 0.5
        )
        time.sleep(5)  # the last IDLE commands go out
        rss, threads = proc_status(proc.pid)
        cpu_before = cpu_seconds(proc.pid)
        time.sleep(10)
        idle_cpu = (cpu_seconds(proc.pid) - cpu_before) / 10
        rng = random.Random(n)
        latencies = []
        for k in range(samples):
            _box, login = rng.choice(boxes)
            message_id = f"bench-{n}-{k}-{secrets.token_hex(4)}@client.example"
            data = build_message(sender="jo@client.example", message_id=f"<{message_id}>")
            start = time.monotonic()
            dovecot.append(login, "INBOX", data)
            wait("the pushed message is stored", lambda mid=message_id: stored(app, mid), 120)
            latencies.append(time.monotonic() - start)
            time.sleep(0.5)
        latencies.sort()
        return {
            "model": "before" if src is not None else "after",
            "mailboxes": n,
            "watched_folders": 2 * n,
            "synced_all_s": round(synced_in, 1),
            "watchers_connected_s": round(connected_in, 1),
            "rss_mb": round(rss / 2**20, 1),
            "rss_kb_per_mailbox": round(rss / 1024 / n, 1),
            "threads": threads,
            "idle_cpu_percent": round(idle_cpu * 100, 2),
            "latency_p50_s": round(statistics.median(latencies), 3),
            "latency_p99_s": round(
                latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 3
            ),
            "samples": samples,
            "tick_s": tick,
        }
    finally:
        stop_processes([proc] if proc is not None else [])
        app.close()
        drop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mailboxes", type=int, nargs="+", default=[100, 300])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument(
        "--before",
        type=Path,
        help="another src/ tree (git archive COMMIT src | tar -x -C DIR; pass DIR/src): "
        "each size runs with it too, in the same run",
    )
    parser.add_argument(
        "--tick",
        type=int,
        default=1,
        help="the worker's MAILROOM_JOBS_TICK in seconds (the product's default is 5; "
        "1 keeps the figures of earlier runs comparable)",
    )
    args = parser.parse_args()
    print("inotify instances per user:", raise_inotify_limit(max(args.mailboxes)), flush=True)
    print("load before:", os.getloadavg(), flush=True)
    os.environ["MAILROOM_ALLOW_PRIVATE_HOSTS"] = "1"
    root = Path(tempfile.mkdtemp(prefix="mailroom-idle-bench-"))
    dovecot = BigDovecot(tempfile.mkdtemp(prefix="mailroom-idle-dovecot-"))
    dovecot.start()
    results = []
    try:
        for n in args.mailboxes:
            results.append(run_size(dovecot, n, args.samples, root, tick=args.tick))
            print(results[-1], flush=True)
            if args.before is not None:
                before = args.before.resolve()
                results.append(run_size(dovecot, n, args.samples, root, before, tick=args.tick))
                print(results[-1], flush=True)
    finally:
        dovecot.stop()
    print("load after:", os.getloadavg(), flush=True)
    for row in results:
        base = next(r for r in results if r["model"] == row["model"])  # its smallest size
        row["rss_ratio_to_smallest"] = round(row["rss_mb"] / base["rss_mb"], 2)
        if row is not base:  # the marginal cost of a watched mailbox (two folders)
            added = row["mailboxes"] - base["mailboxes"]
            row["rss_kb_per_added_mailbox"] = round(
                (row["rss_mb"] - base["rss_mb"]) * 1024 / added, 1
            )
        row["p50_ratio_to_smallest"] = round(row["latency_p50_s"] / base["latency_p50_s"], 2)
        before = [
            r for r in results if r["model"] == "before" and r["mailboxes"] == row["mailboxes"]
        ]
        if row["model"] == "after" and before:  # the two models at the same size
            for field in ("rss_mb", "idle_cpu_percent", "latency_p50_s", "latency_p99_s"):
                if before[0][field]:
                    row[f"{field}_after_over_before"] = round(row[field] / before[0][field], 2)
    print(
        f"{'model':>6} {'mailboxes':>9} {'RSS MB':>8} {'KB/mbox':>8} {'threads':>7} "
        f"{'idle CPU%':>9} {'p50 s':>6} {'p99 s':>6}"
    )
    for row in results:
        print(
            f"{row['model']:>6} {row['mailboxes']:>9} {row['rss_mb']:>8} "
            f"{row['rss_kb_per_mailbox']:>8} {row['threads']:>7} {row['idle_cpu_percent']:>9} "
            f"{row['latency_p50_s']:>6} {row['latency_p99_s']:>6}"
        )
    write_result(
        "idle-workers",
        {
            "results": results,
            "models": {
                "after": "one selector thread + a pool of 32 (decision 0031)",
                "before": "a thread per watched folder",
            },
            "load_average": os.getloadavg(),
        },
    )


if __name__ == "__main__":
    main()

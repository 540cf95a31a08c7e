"""Benchmark: initial-sync throughput with 1, 2 and 3 `mailroom worker` processes
(issue 14, "Throughput with 1, 2, 3 workers").

In one run, against a private Dovecot (bench_idle_workers.BigDovecot: room for many
connections) holding `--mailboxes` users x `--messages` distinct messages in INBOX
(default 50 x 2,000, the issue's size; ~2 KB plain messages from 400 correspondents,
written straight into the Maildirs once and indexed by Dovecot), for each worker count
(`--workers 1 2 3`):

1. a fresh scratch PostgreSQL database (dropped after) and data dir; one company, one
   user and one IMAP mailbox per Dovecot user;
2. K `mailroom worker --concurrency C` processes start (their tick queues every mailbox
   at once: all are pending); the clock runs until every mailbox is `ok` and every
   message is stored;
3. CPU seconds from /proc over that time: the workers (their process trees), Dovecot
   (its tree, reaped IMAP processes included), and PostgreSQL's backends serving the
   scratch database (its shared WAL writer and checkpointer are not counted: other
   databases share them), and the whole machine's (/proc/stat). Each part as CPU ms per
   message (what it costs, whatever else runs) and as cores busy (CPU s per wall s).
   The limit: the part costing the most per message, and whether the machine's cores
   were saturated, by the benchmark or by other processes (a shared machine).
4. the ticks that ran to the end (the workers' logs) against those due (one a second,
   `MAILROOM_JOBS_TICK=1`): whether stall recovery kept running while every slot synced.

Prints wall time, msg/s, the scaling ratio to 1 worker, the CPU figures and the load
average, and writes bench/results/worker-throughput.json (bench/_meta.py).

Run:  .venv/bin/python bench/bench_worker_throughput.py [--mailboxes 50] [--messages 2000]
          [--workers 1 2 3] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._meta import write_result
from bench._pg import temporary_pg
from bench.bench_idle_workers import PG_ADMIN, BigDovecot, stop_processes
from bench.sync_bench import tree_cpu_seconds
from mailroom.app import App, open_app
from mailroom.config import Settings
from mailroom.crm.companies import add_company, add_user
from mailroom.db.engine import transaction
from mailroom.db.models import Mailbox, Message
from mailroom.mailboxes.store import add_mailbox
from mailroom.security.secrets import encode_key, new_key

PASSWORD = "bench-password-1"
START = datetime(2025, 1, 1, tzinfo=UTC)
WORDS = ["quote", "order", "invoice", "delivery", "meeting", "proposal", "price", "offer"]


def message(rng: random.Random, box: int, n: int, owner: str) -> bytes:
    """A plain ~2 KB message, distinct per (box, n), from one of 400 correspondents."""
    person = rng.randrange(400)
    when = format_datetime(START + timedelta(minutes=n))
    subject = " ".join(rng.choice(WORDS) for _ in range(4))
    body = "\r\n".join(
        " ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(rng.randrange(10, 30))
    )
    head = (
        f"From: Client {person} <c{person}@client{person % 120}.example>\r\n"
        f"To: {owner}\r\n"
        f"Subject: {subject} {n}\r\n"
        f"Date: {when}\r\n"
        f"Message-ID: <b{box}-m{n}@bench.example>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    )
    return (head + body + "\r\n").encode()


def fill_users(dovecot: BigDovecot, count: int, messages: int) -> tuple[list[str], int]:
    """`count` Dovecot users with `messages` each in INBOX; (logins, bytes written)."""
    logins, size = [], 0
    stamp = int(time.time())
    for box in range(count):
        login = f"tp{box}"
        dovecot.add_user(login, PASSWORD)
        maildir = dovecot.root / "mail" / login / "Maildir"
        for sub in ("cur", "new", "tmp"):
            (maildir / sub).mkdir(parents=True, exist_ok=True)
        rng = random.Random(box)
        for n in range(messages):
            data = message(rng, box, n, f"{login}@acme.example")
            name = f"{stamp}.M{n}P{box}.bench,S={len(data)},W={len(data)}:2,S"
            (maildir / "cur" / name).write_bytes(data)
            size += len(data)
        logins.append(login)
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", f"{dovecot.mail_user}:", str(dovecot.root / "mail")])
    for login in logins:  # index once, before the clock runs
        dovecot.doveadm("mailbox", "status", "-u", login, "messages", "INBOX")
    return logins, size


def setup_app(dovecot: BigDovecot, logins: list[str], work: Path, url: str, key: str) -> App:
    settings = Settings(
        data_dir=work, database_url=url, secret_key_b64=key, allow_private_hosts=True
    )
    app = open_app(settings)
    with transaction(app.sessions) as session:
        company = add_company(session, name="Acme", domains=["acme.example"])
        for login in logins:
            user = add_user(session, company=company, email=f"{login}@acme.example")
            add_mailbox(
                session,
                app.secrets,
                user=user,
                host=dovecot.host,
                port=dovecot.imap_port,
                password=PASSWORD,
                security="none",
                username=login,
                folders=["INBOX"],
            )
    return app


def backend_pids(database: str) -> list[int]:
    """PostgreSQL backends serving `database` (their process titles name it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if title.startswith("postgres: ") and f" {database} " in title:
            found.append(int(entry.name))
    return found


def machine_cpu() -> float:
    """CPU seconds the whole machine spent busy since boot (/proc/stat: all but idle,
    iowait): compared with the three parts, what other processes took meanwhile."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = sum(fields[:8]) - fields[3] - fields[4]
    return busy / os.sysconf("SC_CLK_TCK")


def cpu_of(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


TICK_S = 1
TICK_RAN = re.compile(r"Job mailroom\.tick\[\d+\]\(timestamp=\d+\) ended with status: Success")


def run_count(
    dovecot: BigDovecot,
    logins: list[str],
    messages: int,
    workers: int,
    concurrency: int,
    root: Path,
) -> dict[str, Any]:
    url, drop = temporary_pg(PG_ADMIN, f"tp_{workers}")
    name = url.rsplit("/", 1)[1]
    key = encode_key(new_key())
    work = root / f"data-{workers}"
    app = setup_app(dovecot, logins, work, url, key)
    expected = len(logins) * messages
    procs: list[subprocess.Popen[bytes]] = []
    try:
        env = dict(
            os.environ,
            MAILROOM_SECRET_KEY=key,
            MAILROOM_DATABASE_URL=url,
            MAILROOM_POLL_INTERVAL="3600",
            MAILROOM_JOBS_TICK=str(TICK_S),
        )
        argv = [sys.executable, "-c", "from mailroom.cli import main; main()", "-v"]
        argv += ["--data-dir", str(work), "worker", "--concurrency", str(concurrency)]
        pg_before = {pid: cpu_of(pid) for pid in backend_pids(name)}
        dovecot_before = tree_cpu_seconds(dovecot._proc.pid)  # type: ignore[union-attr]
        load_before = os.getloadavg()
        machine_before = machine_cpu()
        start = time.monotonic()
        for k in range(workers):
            log = (root / f"worker-{workers}-{k}.log").open("wb")
            procs.append(subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT))

        def done() -> bool:
            with app.sessions() as session:
                stored = session.scalar(select(func.count()).select_from(Message)) or 0
                ok = session.scalar(
                    select(func.count()).select_from(Mailbox).where(Mailbox.status == "ok")
                )
            return stored == expected and ok == len(logins)

        def worker_cpu() -> float:
            return sum(tree_cpu_seconds(p.pid) for p in procs)

        cpu_workers = 0.0
        deadline = time.monotonic() + 600 + expected / 20
        while not done():
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out; see {root}/worker-{workers}-*.log")
            cpu_workers = worker_cpu()  # the last sample before the end: exits lose it
            time.sleep(0.5)
        wall = time.monotonic() - start
        cpu_workers = worker_cpu()
        cpu_dovecot = tree_cpu_seconds(dovecot._proc.pid) - dovecot_before  # type: ignore[union-attr]
        cpu_pg = sum(cpu_of(pid) - pg_before.get(pid, 0.0) for pid in backend_pids(name))
        machine = machine_cpu() - machine_before
        load_after = os.getloadavg()
        ticks = sum(
            len(TICK_RAN.findall((root / f"worker-{workers}-{k}.log").read_text(errors="replace")))
            for k in range(workers)
        )
        with app.sessions() as session:
            stored = session.scalar(select(func.count()).select_from(Message)) or 0
        cores = os.cpu_count() or 1
        return {
            "workers": workers,
            "concurrency": concurrency,
            "mailboxes": len(logins),
            "messages": stored,
            "wall_s": round(wall, 1),
            "msg_per_s": round(stored / wall, 1),
            "cpu_s": {
                "workers": round(cpu_workers, 1),
                "postgresql": round(cpu_pg, 1),
                "dovecot": round(cpu_dovecot, 1),
            },
            "cpu_ms_per_msg": {  # what each part costs per message, whatever the load
                "workers": round(1000 * cpu_workers / stored, 2),
                "postgresql": round(1000 * cpu_pg / stored, 2),
                "dovecot": round(1000 * cpu_dovecot / stored, 2),
            },
            "cores_busy": {  # CPU seconds per wall second (1.0 = one core)
                "workers": round(cpu_workers / wall, 2),
                "postgresql": round(cpu_pg / wall, 2),
                "dovecot": round(cpu_dovecot / wall, 2),
                "all_three": round((cpu_workers + cpu_pg + cpu_dovecot) / wall, 2),
                "whole_machine": round(machine / wall, 2),
                "machine_cores": cores,
            },
            # the tick (stall recovery, due polls) every TICK_S s: did it run, or starve?
            "ticks_run": ticks,
            "ticks_due": int(wall // TICK_S),
            "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in load_after],
        }
    finally:
        stop_processes(procs)
        app.close()
        drop()
        shutil.rmtree(work, ignore_errors=True)


def limit_of(row: dict[str, Any]) -> str:
    """Where the time went: the part costing the most CPU per message, and whether the
    machine's cores were all busy (then by whom: these three, or other processes)."""
    cost = row["cpu_ms_per_msg"]
    top = max(("workers", "postgresql", "dovecot"), key=cost.__getitem__)
    busy = row["cores_busy"]
    if busy["whole_machine"] < 0.85 * busy["machine_cores"]:
        return f"{top} CPU; cores not saturated (waits: locks, I/O, round trips)"
    if busy["all_three"] >= 0.5 * busy["whole_machine"]:
        return f"{top} CPU; the machine's cores saturated by the benchmark"
    return f"{top} CPU; the machine's cores saturated by other processes"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mailboxes", type=int, default=50)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    os.environ["MAILROOM_ALLOW_PRIVATE_HOSTS"] = "1"
    root = Path(tempfile.mkdtemp(prefix="mailroom-tp-bench-"))
    dovecot = BigDovecot(tempfile.mkdtemp(prefix="mailroom-tp-dovecot-"))
    dovecot.start()
    results = []
    try:
        started = time.monotonic()
        logins, size = fill_users(dovecot, args.mailboxes, args.messages)
        print(
            f"{args.mailboxes} x {args.messages} messages, {size / 2**20:.0f} MiB, "
            f"in {time.monotonic() - started:.0f} s; load {os.getloadavg()}",
            flush=True,
        )
        for count in args.workers:
            results.append(run_count(dovecot, logins, args.messages, count, args.concurrency, root))
            print(results[-1], flush=True)
    finally:
        dovecot.stop()
        shutil.rmtree(dovecot.root, ignore_errors=True)
    base = results[0]
    for row in results:
        row["scaling_vs_first"] = round(row["msg_per_s"] / base["msg_per_s"], 2)
        row["limit"] = limit_of(row)
    print(
        f"{'workers':>7} {'wall s':>7} {'msg/s':>7} {'ratio':>6} "
        f"{'CPU ms/msg: workers':>19} {'postgres':>8} {'dovecot':>7} "
        f"{'cores: ours':>11} {'machine':>7}  limit; load after (1/5/15 min)"
    )
    for row in results:
        cost, busy = row["cpu_ms_per_msg"], row["cores_busy"]
        print(
            f"{row['workers']:>7} {row['wall_s']:>7} {row['msg_per_s']:>7} "
            f"{row['scaling_vs_first']:>6} {cost['workers']:>19} {cost['postgresql']:>8} "
            f"{cost['dovecot']:>7} {busy['all_three']:>11} {busy['whole_machine']:>7}  "
            f"{row['limit']}; {row['load_after']}"
        )
    write_result(
        "worker-throughput",
        {
            "mailboxes": args.mailboxes,
            "messages_per_mailbox": args.messages,
            "message_bytes": size,
            "results": results,
        },
    )


if __name__ == "__main__":
    main()

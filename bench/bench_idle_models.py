"""Benchmark: the IDLE concurrency model alone, a thread per folder against the hub.

Issue 14 item 4 asks to choose, by measurement, the model that reaches 1,000 watched
mailboxes (2,000 IDLE connections: INBOX and Sent) in one process. This bench isolates the
model from everything else a worker does (no database, no jobs, no sync): in one process
per model and size, against one private Dovecot (limits raised as in
bench_idle_workers.py), it opens 2N IDLE connections with

- `threads`: the model before decision 0031, a thread per folder looping on
  `idle_pushes` after a 1 s `select` (what `IdleWatcher` did with `idle_check(1)`), or
- `hub`: `mailroom.sync.idle.IdleHub` (one selector thread, a pool of 32),

then reports the time until every connection is in IDLE, the process's RSS and threads,
its CPU over 20 s of quiet, and the latency from an APPEND to a random watched INBOX until
that mailbox's change callback runs (p50/p99 of `--samples`). Each model runs in its own
child process (so RSS and CPU are its own), alternately, in one run: compare the ratios.

Run:  .venv/bin/python bench/bench_idle_models.py [--mailboxes 100 1000] [--samples 30]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import secrets
import select
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._meta import write_result
from bench.bench_idle_workers import BigDovecot, cpu_seconds, proc_status, raise_inotify_limit
from mailroom.connectors.base import ServerSettings
from mailroom.connectors.imap import ImapSource
from mailroom.sync.idle import IdleHub
from mailroom_testing.builders import build_message

FOLDERS = ("INBOX", "Sent")


class ThreadWatcher(threading.Thread):
    """The old model: one thread per folder, waking every second (decision 0020)."""

    def __init__(self, key: tuple[int, str], opener: Callable[[], ImapSource], changed: Any):
        super().__init__(daemon=True)
        self.key, self.opener, self.changed = key, opener, changed
        self.ready = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        source = self.opener()
        source.idle_start(self.key[1])
        self.ready.set()
        sock = source.wire()
        assert sock is not None
        poller = select.poll()  # as IMAPClient's idle_check (select() stops at fd 1,024)
        poller.register(sock, select.POLLIN)
        while not self.stop.is_set():
            if poller.poll(1000) and source.idle_pushes():
                self.changed(self.key[0])
        source.idle_done()
        source.close()


def child(model: str, users: list[tuple[str, str]], conf: dict[str, Any], pipe: Any) -> None:
    """Watch every user's INBOX and Sent with `model`; answer the parent's requests."""
    import ssl

    ctx = ssl.create_default_context(cafile=conf["ca"])
    ctx.check_hostname = False
    changes: dict[int, float] = {}

    def changed(mailbox: int) -> None:
        changes.setdefault(mailbox, time.monotonic())

    def opener_for(login: str, password: str) -> Callable[[], ImapSource]:
        settings = ServerSettings(
            host=conf["host"], port=conf["port"], username=login, password=password
        )
        return lambda: ImapSource.connect(settings, ssl_context=ctx)

    start = time.monotonic()
    keys = [(i, folder) for i in range(len(users)) for folder in FOLDERS]
    if model == "hub":
        hub = IdleHub(on_change=changed)
        watched = [hub.watch(key, opener_for(*users[key[0]])) for key in keys]
        while not all(w.cycles >= 1 for w in watched):
            time.sleep(0.05)
    else:
        threads = [ThreadWatcher(key, opener_for(*users[key[0]]), changed) for key in keys]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.ready.wait()
    pipe.send(time.monotonic() - start)
    while True:
        request = pipe.recv()
        if request == "stop":
            break
        changes.clear()
        pipe.send("ok")
        mailbox = pipe.recv()  # the parent APPENDs now; report when the callback ran
        while mailbox not in changes:
            time.sleep(0.002)
        pipe.send(changes[mailbox])
    if model == "hub":
        hub.stop(30)
    else:
        for thread in threads:
            thread.stop.set()
    pipe.send("done")


def run(model: str, dovecot: BigDovecot, users: list[tuple[str, str]], samples: int) -> dict:
    parent, theirs = multiprocessing.Pipe()
    conf = {"host": dovecot.host, "port": dovecot.imaps_port, "ca": str(dovecot.cert_path)}
    proc = multiprocessing.get_context("spawn").Process(
        target=child, args=(model, users, conf, theirs)
    )
    proc.start()
    assert proc.pid is not None
    connected = parent.recv()
    time.sleep(5)
    rss, threads = proc_status(proc.pid)
    cpu = cpu_seconds(proc.pid)
    time.sleep(20)
    idle_cpu = (cpu_seconds(proc.pid) - cpu) / 20
    rng = random.Random(len(users))
    latencies = []
    for _ in range(samples):
        index = rng.randrange(len(users))
        parent.send("sample")
        parent.recv()
        parent.send(index)
        start = time.monotonic()
        dovecot.append(users[index][0], "INBOX", build_message(sender="jo@client.example"))
        seen = parent.recv()
        latencies.append(seen - start)  # both monotonic clocks of one machine
        time.sleep(0.2)
    parent.send("stop")
    parent.recv()
    proc.join(60)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    return {
        "model": model,
        "mailboxes": len(users),
        "connections": 2 * len(users),
        "all_in_idle_s": round(connected, 2),
        "rss_mb": round(rss / 2**20, 1),
        "threads": threads,
        "idle_cpu_percent": round(idle_cpu * 100, 2),
        "push_p50_ms": round(statistics.median(latencies) * 1000, 1),
        "push_p99_ms": round(p99 * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mailboxes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--samples", type=int, default=30)
    args = parser.parse_args()
    print("inotify instances per user:", raise_inotify_limit(max(args.mailboxes)), flush=True)
    load_before = os.getloadavg()
    dovecot = BigDovecot(tempfile.mkdtemp(prefix="mailroom-idle-models-"))
    dovecot.start()
    rows = []
    try:
        for n in args.mailboxes:
            users = []
            for i in range(n):
                login = f"m{n}-{i}-{secrets.token_hex(2)}"
                password = secrets.token_urlsafe(12)
                dovecot.add_user(login, password)
                dovecot.create_folder(login, "Sent")
                users.append((login, password))
            for conn in list(dovecot._sessions.values()):  # the seeding sessions
                conn.logout()
            dovecot._sessions.clear()
            for model in ("threads", "hub"):
                rows.append(run(model, dovecot, users, args.samples))
                print(json.dumps(rows[-1]), flush=True)
    finally:
        dovecot.stop()
    for row in rows:
        other = next(r for r in rows if r["mailboxes"] == row["mailboxes"] and r is not row)
        if row["model"] == "hub":
            for field in ("rss_mb", "threads", "idle_cpu_percent", "push_p50_ms", "push_p99_ms"):
                if other[field]:
                    row[f"{field}_hub_over_threads"] = round(row[field] / other[field], 2)
    print(
        f"{'model':>8} {'mailboxes':>9} {'in IDLE s':>9} {'RSS MB':>7} {'threads':>7} "
        f"{'idle CPU%':>9} {'p50 ms':>7} {'p99 ms':>7}"
    )
    for row in rows:
        print(
            f"{row['model']:>8} {row['mailboxes']:>9} {row['all_in_idle_s']:>9} "
            f"{row['rss_mb']:>7} {row['threads']:>7} {row['idle_cpu_percent']:>9} "
            f"{row['push_p50_ms']:>7} {row['push_p99_ms']:>7}"
        )
    write_result(
        "idle-models",
        {"results": rows, "load_before": load_before, "load_after": os.getloadavg()},
    )


if __name__ == "__main__":
    main()

"""Sync benchmark: Mailroom against mbsync (isync) on the same Dovecot mailbox, same run.

    .venv/bin/python bench/sync_bench.py --messages 100000

Starts a private Dovecot (mailroom_testing.dovecot), fills one INBOX with N generated
messages (bench/gen_mailbox.py), then measures, each as its own process so peak RSS is
that process's own (GNU time's %M):

1. `mailroom sync --once` initial sync (fetch, parse, store, match), a no-change resync
   and a resync after 100 new messages;
2. `mbsync` mirroring the same INBOX to a local maildir (fsync on, its default): initial,
   no change, after 100 more new messages;
3. in-process, the engine's own time for a no-change resync per folder (the CLI's figure
   includes Python start-up and imports).

Prints a table and the ratios, and writes bench/results/sync-<N>.json (with the run's
commit and package versions, bench/_meta.py).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._meta import write_result  # noqa: E402
from bench.gen_mailbox import fill  # noqa: E402
from mailroom_testing.builders import build_message  # noqa: E402
from mailroom_testing.dovecot import DovecotServer  # noqa: E402

USER, PASSWORD = "bench", "bench-password-1"


def timed(cmd: list[str], env: dict[str, str]) -> dict[str, float]:
    """Run `cmd` under GNU time: wall seconds, peak RSS in MB of its largest process (GNU
    time's %M), and the peak of the summed RSS of the whole process tree (the sync's fetch
    workers included), sampled every 50 ms."""
    proc = subprocess.Popen(
        ["/usr/bin/time", "-f", "%e %M", *cmd],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], tree_rss_kib(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {stdout[-2000:]}{stderr[-2000:]}")
    wall, rss = stderr.strip().splitlines()[-1].split()
    return {
        "seconds": float(wall),
        "peak_rss_mb": int(rss) / 1024,
        "peak_tree_rss_mb": peak[0] / 1024,
    }


def tree_rss_kib(root: int) -> int:
    """The summed VmRSS of `root` and all its descendants, from /proc."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            status = (entry / "status").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss[int(entry.name)] = int(line.split()[1])
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        tree.update(children)
        frontier += children
    return sum(rss.get(pid, 0) for pid in tree)


def mbsync_config(path: Path, dovecot: DovecotServer, local: Path) -> None:
    path.write_text(
        f"""IMAPAccount bench
Host {dovecot.host}
Port {dovecot.imap_port}
User {USER}
Pass {PASSWORD}
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account bench

MaildirStore local
Path {local}/
Inbox {local}/INBOX

Channel bench
Far :remote:
Near :local:
Patterns INBOX
Create Near
Sync Pull
SyncState *
"""
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="keep the generated maildir here and reuse it (hard links) on the next run",
    )
    parser.add_argument(
        "--generate-only", action="store_true", help="fill --cache and stop (no Dovecot)"
    )
    args = parser.parse_args()
    if args.generate_only:
        if args.cache is None:
            raise SystemExit("--generate-only needs --cache DIR")
        print(f"{cached_maildir(args.cache, args.messages)[1] / 2**30:.2f} GiB ready")
        return
    root = Path(tempfile.mkdtemp(prefix="mailroom-bench-"))
    work = Path(tempfile.mkdtemp(prefix="mailroom-bench-work-"))
    dovecot = DovecotServer(root)  # mkdtemp: traversable by the mail user
    dovecot.start()
    try:
        run(dovecot, work, args.messages, args.cache)
    finally:
        dovecot.stop()
        for folder in (root, work):  # GBs of blobs and mail: the figures are in results/
            shutil.rmtree(folder, ignore_errors=True)


def cached_maildir(cache: Path, count: int) -> tuple[Path, int]:
    """A generated maildir of `count` messages under `cache`, made once (and its bytes)."""
    folder = cache / f"maildir-w-{count}"  # "-w": file names carry W= (gen_mailbox.fill)
    done = folder / "bench-size"
    if not done.exists():
        subprocess.run(["rm", "-rf", str(folder)], check=True)
        size = fill(folder, owner=f"{USER}@acme.example", count=count)
        done.write_text(str(size))
    return folder, int(done.read_text())


def run(dovecot: DovecotServer, work: Path, count: int, cache: Path | None = None) -> None:
    dovecot.add_user(USER, PASSWORD)
    dovecot.session(USER)  # creates the home and Maildir
    maildir = dovecot.root / "mail" / USER / "Maildir"
    start = time.monotonic()
    if cache is None:
        size = fill(maildir, owner=f"{USER}@acme.example", count=count)
    else:  # hard links: Dovecot renames (never rewrites) maildir files, so the cache stays
        folder, size = cached_maildir(cache, count)
        maildir.mkdir(parents=True, exist_ok=True)
        subprocess.run(["rm", "-rf", str(maildir / "cur")], check=True)
        subprocess.run(["cp", "-al", str(folder / "cur"), str(maildir / "cur")], check=True)
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", f"{dovecot.mail_user}:", str(maildir)], check=True)
    dovecot.doveadm("mailbox", "status", "-u", USER, "messages", "INBOX")  # index once
    print(f"generated {count} messages, {size / 2**30:.2f} GiB in {time.monotonic() - start:.0f} s")

    data = work / "mailroom"
    env = dict(os.environ, MAILROOM_DATA_DIR=str(data))
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
        box = add_mailbox(
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
        box_id = box.id
    cli = [sys.executable, "-c", "from mailroom.cli import main; main()", "sync", "--once"]
    results: dict[str, dict[str, float]] = {}
    results["mailroom initial"] = timed(cli, env)
    results["mailroom no change"] = timed(cli, env)
    from mailroom.sync.engine import sync_mailbox

    sync_mailbox(app, box_id)  # warm-up: the lazy imports of the connector
    runs = []
    for _ in range(5):
        t = time.perf_counter()
        report = sync_mailbox(app, box_id)
        runs.append((time.perf_counter() - t) * 1000 / max(1, len(report.folders)))
    engine_ms = sorted(runs)[2]  # median of 5, connect + login + STATUS + bookkeeping
    for n in range(100):
        dovecot.append(USER, "INBOX", build_message(sender="new0@client.example", minutes=n))
    t = time.perf_counter()
    assert sync_mailbox(app, box_id).fetched == 100
    engine_new_s = time.perf_counter() - t  # in-process: no interpreter start-up, imports
    for n in range(100):
        dovecot.append(USER, "INBOX", build_message(sender="new@client.example", minutes=n))
    results["mailroom +100"] = timed(cli, env)

    local = work / "mbsync"
    local.mkdir()
    config = work / "mbsyncrc"
    mbsync_config(config, dovecot, local)
    mbsync = ["mbsync", "-c", str(config), "-q", "bench"]
    results["mbsync initial"] = timed(mbsync, env)
    results["mbsync no change"] = timed(mbsync, env)
    for n in range(100):
        dovecot.append(USER, "INBOX", build_message(sender="new2@client.example", minutes=n))
    results["mbsync +100"] = timed(mbsync, env)

    print(f"{'phase':20} {'wall':>10}  {'largest':>7}  {'tree':>7}")
    for name, value in results.items():
        rate = (count if "initial" in name else 100 if "+100" in name else 0) / value["seconds"]
        extra = f"  {rate:8.0f} msg/s" if rate else ""
        print(
            f"{name:20} {value['seconds']:8.2f} s  {value['peak_rss_mb']:4.0f} MB"
            f"  {value['peak_tree_rss_mb']:4.0f} MB{extra}"
        )
    print(f"mailroom engine, no-change resync: {engine_ms:.1f} ms per folder (in-process)")
    print(f"mailroom engine, +100 resync: {engine_new_s:.2f} s (in-process)")
    for phase in ("initial", "no change", "+100"):
        ratio = results[f"mailroom {phase}"]["seconds"] / results[f"mbsync {phase}"]["seconds"]
        print(f"ratio mailroom/mbsync, {phase}: {ratio:.2f}")
    write_result(
        f"sync-{count}",
        {
            "messages": count,
            "bytes": size_of(dovecot),
            "results": results,
            "engine_no_change_ms_per_folder": engine_ms,
            "engine_plus_100_seconds": engine_new_s,
        },
    )
    app.close()


def size_of(dovecot: DovecotServer) -> int:
    maildir = dovecot.root / "mail" / USER / "Maildir"
    return sum(p.stat().st_size for p in maildir.rglob("*") if p.is_file())


if __name__ == "__main__":
    main()

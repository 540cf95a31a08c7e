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
import gc
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._meta import write_result  # noqa: E402
from bench._pg import scratch_pg  # noqa: E402
from bench.gen_mailbox import fill  # noqa: E402
from mailroom_testing.builders import build_message  # noqa: E402
from mailroom_testing.dovecot import DovecotServer  # noqa: E402

USER, PASSWORD = "bench", "bench-password-1"


def timed(cmd: list[str], env: dict[str, str]) -> dict[str, float]:
    """Run `cmd` under GNU time: wall seconds, peak RSS in MB of its largest process (GNU
    time's %M), and the peak of the summed RSS of the whole process tree (the sync's fetch
    workers included), sampled every 50 ms."""
    server_cpu = tree_cpu_seconds(SERVER_PID[0]) if SERVER_PID else 0.0
    proc = subprocess.Popen(
        ["/usr/bin/time", "-f", "%e %M %U %S", *cmd],
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
    wall, rss, user, system = stderr.strip().splitlines()[-1].split()
    server_cpu = (tree_cpu_seconds(SERVER_PID[0]) if SERVER_PID else 0.0) - server_cpu
    return {
        "seconds": float(wall),
        "peak_rss_mb": int(rss) / 1024,
        "peak_tree_rss_mb": peak[0] / 1024,
        "cpu_seconds": float(user) + float(system),  # the command and its waited-for children
        "server_cpu_seconds": server_cpu,  # Dovecot's, meanwhile
    }


SERVER_PID: list[int] = []  # Dovecot's master process, once started


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds (user + system) of `root`, its living descendants and the children it
    reaped, from /proc: how much of the machine a server used, whatever else ran."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    used: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        used[pid] = int(fields[11]) + int(fields[12])  # utime, stime
        if pid == root:
            used[pid] += int(fields[13]) + int(fields[14])  # cutime, cstime: reaped children
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        tree.update(children)
        frontier += children
    return sum(used.get(pid, 0) for pid in tree) / tick


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
    parser.add_argument(
        "--pg",
        default=None,
        metavar="ADMIN_URL",
        help="also sync on PostgreSQL (a scratch database made through this admin URL, "
        "e.g. postgresql://postgres@127.0.0.1:5432/postgres) and print its ratio to SQLite",
    )
    parser.add_argument("--no-mbsync", action="store_true", help="skip the mbsync phases")
    parser.add_argument(
        "--before",
        type=Path,
        default=None,
        metavar="SRC",
        help="also run the initial sync (SQLite) with another src/ tree first on PYTHONPATH "
        "(e.g. `git archive COMMIT src | tar -x -C DIR`, then DIR/src): before/after, same run",
    )
    parser.add_argument(
        "--initial-only",
        action="store_true",
        help="only the wire baseline and the initial syncs (with --before, --pg): no "
        "resyncs, no mbsync; results in bench/results/sync-N-initial.json",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="FILE",
        help="run only the initial sync, in-process under cProfile, and dump the stats to FILE",
    )
    parser.add_argument(
        "--py-spy",
        type=Path,
        default=None,
        metavar="FILE",
        help="run only the CLI initial sync under `py-spy record --subprocesses` (sampling, "
        "every process of the tree) and write its collapsed stacks to FILE "
        "(bench/spy_shares.py sums them per process and function)",
    )
    parser.add_argument(
        "--profile-resync",
        type=Path,
        default=None,
        metavar="FILE",
        help="run the initial sync in-process, then three +100 resyncs under cProfile "
        "(wall-clock timer: a resync mostly waits), and dump the stats to FILE",
    )
    parser.add_argument(
        "--resync-only",
        action="store_true",
        help="run the initial sync in-process, then only the +100 in-process step against "
        "the bare resync (with --pg: on PostgreSQL)",
    )
    parser.add_argument(
        "--sections",
        action="store_true",
        help="run only the initial sync, in-process, and print the CPU of each step "
        "(cheap wrappers, not a profiler: cProfile's overhead overstates small functions)",
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
    SERVER_PID.append(dovecot._proc.pid)
    try:
        run(dovecot, work, args.messages, args)
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


def run(dovecot: DovecotServer, work: Path, count: int, args: argparse.Namespace) -> None:
    dovecot.add_user(USER, PASSWORD)
    dovecot.session(USER)  # creates the home and Maildir
    maildir = dovecot.root / "mail" / USER / "Maildir"
    start = time.monotonic()
    if args.cache is None:
        size = fill(maildir, owner=f"{USER}@acme.example", count=count)
    else:  # hard links: Dovecot renames (never rewrites) maildir files, so the cache stays
        folder, size = cached_maildir(args.cache, count)
        maildir.mkdir(parents=True, exist_ok=True)
        subprocess.run(["rm", "-rf", str(maildir / "cur")], check=True)
        subprocess.run(["cp", "-al", str(folder / "cur"), str(maildir / "cur")], check=True)
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", f"{dovecot.mail_user}:", str(maildir)], check=True)
    dovecot.doveadm("mailbox", "status", "-u", USER, "messages", "INBOX")  # index once
    print(f"generated {count} messages, {size / 2**30:.2f} GiB in {time.monotonic() - start:.0f} s")
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")

    app, box_id, env = make_target(dovecot, work / "mailroom", None)
    if args.profile is not None:
        profile_initial(app, box_id, args.profile)
        return
    if args.profile_resync is not None:
        if args.pg is not None:
            app.close()
            with scratch_pg(args.pg) as url:
                pg_app, pg_box, _ = make_target(dovecot, work / "mailroom-pg", url)
                profile_resync(dovecot, pg_app, pg_box, args.profile_resync)
            return
        profile_resync(dovecot, app, box_id, args.profile_resync)
        return
    if args.resync_only:
        if args.pg is not None:
            app.close()
            with scratch_pg(args.pg) as url:
                pg_app, pg_box, _ = make_target(dovecot, work / "mailroom-pg", url)
                resync_only(dovecot, pg_app, pg_box)
            return
        resync_only(dovecot, app, box_id)
        return
    if args.sections and args.pg is not None:  # the same on PostgreSQL
        app.close()
        with scratch_pg(args.pg) as url:
            pg_app, pg_box, _ = make_target(dovecot, work / "mailroom-pg", url)
            sections_initial(pg_app, pg_box)
        return
    if args.sections:
        sections_initial(app, box_id)
        return
    cli = [sys.executable, "-c", "from mailroom.cli import main; main()", "sync", "--once"]
    if args.py_spy is not None:
        spy = [str(Path(sys.executable).with_name("py-spy")), "record", "--subprocesses"]
        spy += ["--rate", "200", "--format", "raw", "--output", str(args.py_spy), "--"]
        print(timed([*spy, *cli], env))
        return
    results: dict[str, dict[str, float]] = {}
    # the practical limit (two processes: fetch + parse_headers, no storage), before and
    # after Mailroom's initial sync, so both see the same machine
    results["wire baseline (1)"] = timed(wire_cmd(dovecot), env)
    results["mailroom initial"] = timed(cli, env)
    results["wire baseline (2)"] = timed(wire_cmd(dovecot), env)
    if args.before is not None:
        _, _, before_env = make_target(dovecot, work / "mailroom-before", None)
        before_env["PYTHONPATH"] = str(args.before.resolve())
        results["mailroom initial (before)"] = timed(cli, before_env)
    pg_admin = args.pg
    if pg_admin is not None:
        with scratch_pg(pg_admin) as url:
            pg_app, _, pg_env = make_target(dovecot, work / "mailroom-pg", url)
            results["mailroom initial (postgresql)"] = timed(cli, pg_env)
            pg_app.close()
        if args.before is not None:  # the other src/ on PostgreSQL too, on its own database
            with scratch_pg(pg_admin, "before") as url:
                pg_app, _, pg_env = make_target(dovecot, work / "mailroom-pg-before", url)
                pg_env["PYTHONPATH"] = str(args.before.resolve())
                results["mailroom initial (postgresql, before)"] = timed(cli, pg_env)
                pg_app.close()
    if args.initial_only:
        initial_only_report(results, count, dovecot)
        app.close()
        return
    results["mailroom no change"] = timed(cli, env)
    from mailroom.sync.engine import sync_mailbox

    as_the_cli_collects()
    sync_mailbox(app, box_id)  # warm-up: the lazy imports of the connector
    runs = []
    for _ in range(5):
        t = time.perf_counter()
        report = sync_mailbox(app, box_id)
        runs.append((time.perf_counter() - t) * 1000 / max(1, len(report.folders)))
    engine_ms = sorted(runs)[2]  # median of 5, connect + login + STATUS + bookkeeping
    plus_100 = resync_after_new(dovecot, app, box_id)
    for n in range(100):
        dovecot.append(USER, "INBOX", build_message(sender="new@client.example", minutes=n))
    results["mailroom +100"] = timed(cli, env)

    if not args.no_mbsync:
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

    print_phases(results, count)
    print(f"mailroom engine, no-change resync: {engine_ms:.1f} ms per folder (in-process)")
    print(
        f"+100 resync in-process: mailroom {plus_100['mailroom']:.2f} s, bare "
        f"STATUS/EXAMINE/FETCH {plus_100['baseline']:.2f} s, mailroom's own "
        f"{plus_100['mailroom'] - plus_100['baseline']:.2f} s (median of 3 rounds)"
    )
    ratios = sync_ratios(results, has_mbsync=not args.no_mbsync)
    for label, ratio in ratios.items():
        print(f"ratio {label}: {ratio:.2f}")
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    write_result(
        f"sync-{count}",
        {
            "messages": count,
            "bytes": size_of(dovecot),
            "results": results,
            "ratios": ratios,
            "engine_no_change_ms_per_folder": engine_ms,
            "engine_plus_100_seconds": plus_100["mailroom"],
            "plus_100_in_process": plus_100,
            "loadavg_at_end": list(os.getloadavg()),
        },
    )
    app.close()


def print_phases(results: dict[str, dict[str, float]], count: int) -> None:
    """The table of phases: wall, peak RSS (largest process, tree), CPU, Dovecot's CPU."""
    print(f"{'phase':30} {'wall':>10}  {'largest':>7}  {'tree':>7}  {'CPU':>7}  {'Dovecot':>7}")
    for name, value in results.items():
        many = "initial" in name or "baseline" in name
        rate = (count if many else 100 if "+100" in name else 0) / value["seconds"]
        extra = f"  {rate:8.0f} msg/s" if rate else ""
        print(
            f"{name:30} {value['seconds']:8.2f} s  {value['peak_rss_mb']:4.0f} MB"
            f"  {value['peak_tree_rss_mb']:4.0f} MB  {value['cpu_seconds']:5.1f} s"
            f"  {value['server_cpu_seconds']:5.1f} s{extra}"
        )


def initial_only_report(
    results: dict[str, dict[str, float]], count: int, dovecot: DovecotServer
) -> None:
    """`--initial-only`: the table and ratios of the initial syncs and the wire baseline,
    written to bench/results/sync-N-initial.json (the whole run's file is left alone)."""
    print_phases(results, count)
    ratios = sync_ratios(results, has_mbsync=False)
    for label, ratio in ratios.items():
        print(f"ratio {label}: {ratio:.2f}")
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    write_result(
        f"sync-{count}-initial",
        {
            "messages": count,
            "bytes": size_of(dovecot),
            "results": results,
            "ratios": ratios,
            "loadavg_at_end": list(os.getloadavg()),
        },
    )


def sync_ratios(results: dict[str, dict[str, float]], *, has_mbsync: bool) -> dict[str, float]:
    """Mailroom / the wire baseline (the faster of its two runs), PostgreSQL / SQLite, and
    Mailroom / mbsync per phase."""
    initial = results["mailroom initial"]
    wire = min(results["wire baseline (1)"]["seconds"], results["wire baseline (2)"]["seconds"])
    wire_cpu = min(r["cpu_seconds"] for k, r in results.items() if k.startswith("wire"))
    ratios = {
        "mailroom/wire baseline, initial": initial["seconds"] / wire,
        "mailroom/wire baseline, initial, CPU": initial["cpu_seconds"] / wire_cpu,
    }
    before = results.get("mailroom initial (before)")
    if before is not None:
        ratios["before: mailroom/wire baseline, initial"] = before["seconds"] / wire
        ratios["after/before, initial"] = initial["seconds"] / before["seconds"]
        ratios["after/before, initial, CPU"] = initial["cpu_seconds"] / before["cpu_seconds"]
    pg = results.get("mailroom initial (postgresql)")
    if pg is not None:
        ratios["postgresql/sqlite, initial"] = pg["seconds"] / initial["seconds"]
        ratios["postgresql/sqlite, initial, CPU"] = pg["cpu_seconds"] / initial["cpu_seconds"]
        ratios["mailroom on postgresql/wire baseline, initial"] = pg["seconds"] / wire
        pg_before = results.get("mailroom initial (postgresql, before)")
        if pg_before is not None and before is not None:
            ratios["before: postgresql/sqlite, initial"] = pg_before["seconds"] / before["seconds"]
            ratios["postgresql after/before, initial"] = pg["seconds"] / pg_before["seconds"]
            ratios["postgresql after/before, initial, CPU"] = (
                pg["cpu_seconds"] / pg_before["cpu_seconds"]
            )
    if has_mbsync:
        for phase in ("initial", "no change", "+100"):
            mine, theirs = results[f"mailroom {phase}"], results[f"mbsync {phase}"]
            ratios[f"mailroom/mbsync, {phase}"] = mine["seconds"] / theirs["seconds"]
    return ratios


def wire_cmd(dovecot: DovecotServer) -> list[str]:
    """The practical-limit baseline's command (bench/wire_baseline.py)."""
    return [
        sys.executable,
        str(REPO / "bench" / "wire_baseline.py"),
        f"--host={dovecot.host}",
        f"--port={dovecot.imap_port}",
        f"--user={USER}",
        f"--password={PASSWORD}",
    ]


def make_target(
    dovecot: DovecotServer, data: Path, url: str | None
) -> tuple[Any, int, dict[str, str]]:
    """A data dir (SQLite, or the database at `url`) with one company, user and the
    bench mailbox: the app, the mailbox id and the environment for the CLI."""
    from mailroom.app import open_app
    from mailroom.config import load_settings
    from mailroom.crm.companies import add_company, add_user
    from mailroom.db.engine import transaction
    from mailroom.mailboxes.store import add_mailbox
    from mailroom.security.secrets import create_key_file

    env = dict(os.environ, MAILROOM_DATA_DIR=str(data))
    env.pop("MAILROOM_DATABASE_URL", None)
    if url is not None:
        env["MAILROOM_DATABASE_URL"] = url
    settings = load_settings(data)
    if url is not None:
        settings = replace(settings, database_url=url)
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
    return app, box_id, env


def profile_initial(app: Any, box_id: int, out: Path) -> None:
    """The initial sync in this process under cProfile, timing the CPU of this thread
    (its fetch workers are processes
    of their own): stats to `out`, the top of the cumulative and own-time tables printed."""
    import cProfile
    import pstats

    from mailroom.sync.engine import sync_mailbox

    profiler = cProfile.Profile(time.thread_time)  # CPU: wall is noise on a shared machine
    t = time.perf_counter()
    cpu = time.process_time()
    profiler.enable()
    report = sync_mailbox(app, box_id)
    profiler.disable()
    print(
        f"initial sync in-process: {time.perf_counter() - t:.1f} s wall, "
        f"{time.process_time() - cpu:.1f} s CPU, {report.fetched} fetched, error {report.error}"
    )
    profiler.dump_stats(out)
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(30)
    app.close()


def profile_resync(dovecot: DovecotServer, app: Any, box_id: int, out: Path) -> None:
    """The initial sync in-process (not profiled), then three rounds of 100 new messages,
    each resync under cProfile with a wall-clock timer (a resync mostly waits on Dovecot
    and the database): stats of the three to `out`, the top of the tables printed."""
    import cProfile
    import pstats

    from mailroom.sync.engine import sync_mailbox

    t = time.perf_counter()
    report = sync_mailbox(app, box_id)
    print(f"initial sync: {time.perf_counter() - t:.1f} s, {report.fetched} fetched")
    profiler = cProfile.Profile(time.perf_counter)
    walls = []
    for round_ in range(3):
        for n in range(100):
            message = build_message(sender=f"p{round_}@client.example", minutes=n)
            dovecot.append(USER, "INBOX", message)
        t = time.perf_counter()
        profiler.enable()
        assert sync_mailbox(app, box_id).fetched == 100
        profiler.disable()
        walls.append(time.perf_counter() - t)
    print(f"+100 resyncs under cProfile: {', '.join(f'{w:.2f} s' for w in walls)}")
    print(f"load: {os.getloadavg()[0]:.2f}")
    profiler.dump_stats(out)
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(60)
    stats.sort_stats("tottime").print_stats(25)
    app.close()


SECTIONS = (  # (module, attribute path) of the steps timed by --sections, outer first
    ("mailroom.sync.folders", "commit_batch"),
    ("mailroom.ingest.batch", "ingest_batch"),
    ("mailroom.ingest.batch", "_ingest"),
    ("mailroom.ingest.store", "Segment.flush"),
    ("mailroom.ingest.store", "assign_conversations"),
    ("mailroom.matching.conversations", "subject_unions"),
    ("mailroom.ingest.store", "Segment.match"),
    ("mailroom.ingest.batch", "_store_copies"),
    ("mailroom.ingest.store", "insert_with_ids"),
    ("mailroom.ingest.store", "insert_rows"),
    ("mailroom.ingest.batch", "insert_rows"),
    ("mailroom.ingest.store", "message_row"),
    ("mailroom.ingest.store", "content_rows"),
    ("mailroom.ingest.store", "thread_input"),
    ("mailroom.ingest.batch", "classify_direction"),
    ("mailroom.mail.blobs", "BlobBatch.__exit__"),
    ("mailroom.ingest.batch", "decide"),
    ("mailroom.ingest.batch", "_view"),
    ("mailroom.matching.directory", "load_directory"),
    ("mailroom.ingest.batch", "load_policy"),
    ("mailroom.sync.folders", "_touch"),
    ("mailroom.sync.fetch_worker", "FetchWorker._receive"),
    ("mailroom.connectors.imap", "ImapSource.list_uids"),
)


def sections_initial(app: Any, box_id: int) -> None:
    """The initial sync in this process with each of SECTIONS timed (this thread's CPU,
    inclusive, and wall), and every SQL statement counted with its time in the driver."""
    import importlib

    from sqlalchemy import event

    from mailroom.sync.engine import sync_mailbox

    spent: dict[str, list[float]] = {}
    as_the_cli_collects()
    collecting = [0.0, 0.0, 0.0]  # wall, this thread's CPU, full collections

    def collector(phase: str, info: dict[str, int]) -> None:
        sign = -1 if phase == "start" else 1
        collecting[0] += sign * time.perf_counter()
        collecting[1] += sign * time.thread_time()
        collecting[2] += phase == "stop" and info["generation"] == 2

    gc.callbacks.append(collector)

    def wrap(label: str, fn: Any) -> Any:
        def timed_call(*a: Any, **k: Any) -> Any:
            cpu, wall = time.thread_time(), time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                total = spent.setdefault(label, [0.0, 0.0, 0])
                total[0] += time.thread_time() - cpu
                total[1] += time.perf_counter() - wall
                total[2] += 1

        return timed_call

    for module_name, path in SECTIONS:
        owner: Any = importlib.import_module(module_name)
        *outer, name = path.split(".")
        for part in outer:
            owner = getattr(owner, part)
        setattr(owner, name, wrap(path, getattr(owner, name)))
    sql = [0, 0.0, 0.0]

    by_statement: dict[str, list[float]] = {}  # the statement's first words → wall, count
    started: list[float] = [0.0]

    @event.listens_for(app.engine, "before_cursor_execute")
    def before(*_: Any) -> None:
        sql[1] -= time.thread_time()
        sql[2] -= time.perf_counter()
        started[0] = time.perf_counter()

    @event.listens_for(app.engine, "after_cursor_execute")
    def after(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sql[0] += 1
        sql[1] += time.thread_time()
        sql[2] += time.perf_counter()
        key = " ".join(statement.split()[:4])[:60]
        entry = by_statement.setdefault(key, [0.0, 0])
        entry[0] += time.perf_counter() - started[0]
        entry[1] += 1

    commits = [0, 0.0, 0.0]

    @event.listens_for(app.engine, "commit")
    def committing(*_: Any) -> None:  # right before the driver's COMMIT
        commits[1] -= time.thread_time()
        commits[2] -= time.perf_counter()

    @event.listens_for(app.sessions, "after_commit")
    def committed(*_: Any) -> None:
        if commits[2] < 0:
            commits[0] += 1
            commits[1] += time.thread_time()
            commits[2] += time.perf_counter()

    cpu, wall = time.thread_time(), time.perf_counter()
    report = sync_mailbox(app, box_id)
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    print(
        f"initial sync in-process: {wall:.1f} s wall, {cpu:.1f} s CPU (this thread), "
        f"{report.fetched} fetched, error {report.error}, load {os.getloadavg()[0]:.1f}"
    )
    print(f"{'step':36} {'calls':>7} {'CPU s':>7} {'CPU %':>6} {'wall s':>7}")
    for label, (c, w, n) in spent.items():
        print(f"{label:36} {n:7d} {c:7.2f} {100 * c / cpu:5.1f}% {w:7.2f}")
    print(
        f"{'SQL statements (in the driver)':36} {sql[0]:7d} {sql[1]:7.2f} "
        f"{100 * sql[1] / cpu:5.1f}% {sql[2]:7.2f}"
    )
    for key, (seconds, n) in sorted(by_statement.items(), key=lambda kv: -kv[1][0])[:8]:
        print(f"  {key:60} {int(n):6d} {seconds:7.2f} s wall")
    print(
        f"{'COMMIT (WAL checkpoints included)':36} {commits[0]:7d} {commits[1]:7.2f} "
        f"{100 * commits[1] / cpu:5.1f}% {commits[2]:7.2f}"
    )
    gc.callbacks.remove(collector)
    print(
        f"{'garbage collection (' + str(int(collecting[2])) + ' full)':36} {'':7} "
        f"{collecting[1]:7.2f} {100 * collecting[1] / cpu:5.1f}% {collecting[0]:7.2f}"
    )
    app.close()


def as_the_cli_collects() -> None:
    """This process's garbage collector set as the CLI sets it for a command (cli/__init__.py:
    `_resume_gc`), so in-process figures are the CLI's, serve's and the workers'."""
    from mailroom.cli import GC_THRESHOLDS

    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def resync_only(dovecot: DovecotServer, app: Any, box_id: int) -> None:
    """The initial sync in-process (not timed), then `resync_after_new`, printed."""
    from mailroom.sync.engine import sync_mailbox

    as_the_cli_collects()
    t = time.perf_counter()
    report = sync_mailbox(app, box_id)
    print(f"initial sync in-process: {time.perf_counter() - t:.1f} s, {report.fetched} fetched")
    sync_mailbox(app, box_id)  # warm-up, as in the whole run
    plus_100 = resync_after_new(dovecot, app, box_id)
    print(
        f"+100 resync in-process: mailroom {plus_100['mailroom']:.2f} s, bare "
        f"STATUS/EXAMINE/FETCH {plus_100['baseline']:.2f} s, mailroom's own "
        f"{plus_100['mailroom'] - plus_100['baseline']:.2f} s (median of 3 rounds)"
    )
    print(f"rounds: mailroom {plus_100['mailroom_runs']}, bare {plus_100['baseline_runs']}")
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    app.close()


def resync_after_new(dovecot: DovecotServer, app: Any, box_id: int) -> dict[str, Any]:
    """Three rounds of: 100 new messages → a bare imaplib connect, LOGIN, STATUS, EXAMINE
    and UID FETCH BODY.PEEK[] of them (Dovecot's own share, its rescan of the maildir
    after new mail included), then Mailroom syncs them (not timed); 100 more → Mailroom's
    in-process resync, timed. Both timed steps meet the maildir cold. Medians."""
    import statistics

    from mailroom.sync.engine import sync_mailbox

    def add(tag: str) -> None:
        for n in range(100):
            message = build_message(sender=f"{tag}@client.example", minutes=n)
            dovecot.append(USER, "INBOX", message)

    bare, mine = [], []
    for round_ in range(3):
        add(f"b{round_}")
        bare.append(bare_resync(dovecot))
        assert sync_mailbox(app, box_id).fetched == 100
        add(f"m{round_}")
        t = time.perf_counter()
        assert sync_mailbox(app, box_id).fetched == 100
        mine.append(time.perf_counter() - t)
    return {
        "mailroom": statistics.median(mine),
        "baseline": statistics.median(bare),
        "mailroom_runs": [round(x, 3) for x in mine],
        "baseline_runs": [round(x, 3) for x in bare],
    }


def bare_resync(dovecot: DovecotServer) -> float:
    """Seconds for the least a resync must ask: connect, LOGIN, STATUS, EXAMINE, fetch the
    messages above the last UID (here: the newest 100)."""
    import imaplib

    t = time.perf_counter()
    conn = imaplib.IMAP4(dovecot.host, dovecot.imap_port)
    conn.login(USER, PASSWORD)
    typ, data = conn.status("INBOX", "(MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ)")
    assert typ == "OK", data
    uidnext = int(data[0].split(b"UIDNEXT ")[1].split()[0].rstrip(b")"))
    conn.select("INBOX", readonly=True)
    typ, data = conn.uid("FETCH", f"{uidnext - 100}:*", "(FLAGS BODY.PEEK[])")
    assert typ == "OK" and sum(isinstance(i, tuple) for i in data) == 100
    conn.logout()
    return time.perf_counter() - t


def size_of(dovecot: DovecotServer) -> int:
    maildir = dovecot.root / "mail" / USER / "Maildir"
    return sum(p.stat().st_size for p in maildir.rglob("*") if p.is_file())


if __name__ == "__main__":
    main()

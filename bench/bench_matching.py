"""Matching throughput: messages per second against 10,000 and 1,000,000 records'
addresses, on SQLite and PostgreSQL, beside a plain-dict-lookup baseline measured in the
same process.

What is timed is `matching.linker.plan_links` — the address, domain, opportunity, thread
and case lookups ingestion runs for every message — in batches of 200 messages and one
message at a time. The baseline resolves the same participants with a Python dict
{address: [record]} held in memory: the floor any database-backed matcher is compared
with. The three are timed in turns (dict, batches, singles, dict, …) --repeat times and
each keeps its best round, so a burst of load on a shared machine hits all three alike,
and its median round (a round trip to PostgreSQL costs 0.1 ms at best and ms on a busy
machine: the best round hides that); each round's CPU time of this process is kept too
(on PostgreSQL it leaves out the server's share).

    .venv/bin/python bench/bench_matching.py                       # 10k and 1M, both databases
    .venv/bin/python bench/bench_matching.py --sizes 10000 --db sqlite --messages 2000
    .venv/bin/python bench/bench_matching.py --before /tmp/old      # DIR/src: old source

The SQLite databases are generated (bench/gen_matching.py) under --work (default
/tmp/mailroom-bench) and reused by later runs; PostgreSQL's are scratch databases made
through --pg-admin and dropped at the end, unless --pg-keep names them by size and keeps
them for the next run (a million records take minutes to write). Each measurement runs in
a fresh process (`--measure`), so `--before DIR` (a checkout of older source, e.g. `git
archive COMMIT src | tar -x -C DIR`) measures the old matcher on the same database in the
same run. The rates go to bench/results/matching.json with the run's commit and package
versions (bench/_meta.py).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

BENCH = Path(__file__).resolve()
SRC = BENCH.parents[1] / "src"


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def measure(url: str, work: Path, size: int, count: int, repeat: int) -> dict[str, Any]:
    """The rates of one source tree (whichever `mailroom` this process imports)."""
    from gen_matching import address, messages, open_bench_app
    from sqlalchemy import select

    from mailroom.db.models import Company
    from mailroom.matching.linker import MatchInput, plan_links

    app = open_bench_app(work, url)
    with app.sessions() as session:
        company_id = session.scalar(select(Company.id).where(Company.name == "Bench"))
    assert company_id is not None, "generate the database first"
    inputs = messages(size, count)
    table = {address(i): [(i + 1, "main")] for i in range(size)}
    singles: list[MatchInput] = inputs[: max(1, count // 4)]

    def baseline() -> None:
        for item in inputs:
            found = []
            for _, a in item.participants:
                found.extend(table.get(a, ()))

    def batched() -> None:
        with app.sessions() as session:
            for start in range(0, len(inputs), 200):
                plan_links(session, company_id=company_id, inputs=inputs[start : start + 200])

    def one_by_one() -> None:
        with app.sessions() as session:
            for item in singles:
                plan_links(session, company_id=company_id, inputs=[item])

    started = time.perf_counter()
    with app.sessions() as session:  # builds the index; the plans are right, not just fast
        plan = plan_links(session, company_id=company_id, inputs=inputs[:50])
        expected = sum(1 for i in inputs[:50] for _, a in i.participants if a in table)
        linked = sum(1 for links in plan.values() for x in links if x.reason == "address:main")
        assert linked >= expected - 5, (linked, expected)
    index_built = time.perf_counter() - started
    runs: dict[str, tuple[int, Callable[[], None]]] = {
        "dict": (count, baseline),
        "batch": (count, batched),
        "single": (len(singles), one_by_one),
    }
    walls: dict[str, list[float]] = {name: [] for name in runs}
    cpus: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, (_, run) in runs.items():
            started, used = time.perf_counter(), time.process_time()
            run()
            walls[name].append(time.perf_counter() - started)
            cpus[name].append(time.process_time() - used)
    app.close()
    return {
        "msg_per_s": {name: runs[name][0] / min(walls[name]) for name in runs},
        "msg_per_s_cpu": {name: runs[name][0] / min(cpus[name]) for name in runs},
        # The median round too: the best hides how much a round trip costs on a busy
        # machine, where the database server waits for a core (bench/README.md, round 3).
        "msg_per_s_median": {name: runs[name][0] / statistics.median(walls[name]) for name in runs},
        "index_built_s": index_built,
    }


def child(url: str, work: Path, args: argparse.Namespace, src: Path) -> dict[str, Any]:
    """`measure` in a fresh process importing `src` (this tree's, or --before's)."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    command = [sys.executable, str(BENCH), "--measure", url, "--work", str(work)]
    command += ["--sizes", str(args.size_now), "--messages", str(args.messages)]
    command += ["--repeat", str(args.repeat)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"measuring {src} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def line(label: str, got: dict[str, Any]) -> str:
    rates, cpu = got["msg_per_s"], got["msg_per_s_cpu"]
    median = got.get("msg_per_s_median", rates)
    dict_rate = rates["dict"]
    return (
        f"{label:<34} dict {dict_rate:>10,.0f} msg/s | plan_links batch-200 "
        f"{rates['batch']:>8,.0f} msg/s ({rates['batch'] / dict_rate:.3f}x dict; CPU "
        f"{cpu['batch'] / cpu['dict']:.3f}x; median round {median['batch']:>8,.0f} msg/s, "
        f"{median['batch'] / median['dict']:.3f}x) | one-by-one {rates['single']:>6,.0f} msg/s "
        f"({rates['single'] / dict_rate:.4f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--work", type=Path, default=Path("/tmp/mailroom-bench"))
    parser.add_argument("--db", default="sqlite,postgresql", help="comma-separated")
    parser.add_argument(
        "--pg-admin",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL URL allowed to create and drop a database",
    )
    parser.add_argument(
        "--pg-keep",
        action="store_true",
        help="keep PostgreSQL's databases (mailroom_bench_match_SIZE) and reuse them later",
    )
    parser.add_argument("--before", type=Path, help="a directory holding older source: DIR/src")
    parser.add_argument("--measure", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:  # a child: one database, one size, this process's source
        print(
            json.dumps(measure(args.measure, args.work, args.sizes[0], args.messages, args.repeat))
        )
        return

    from _meta import write_result
    from _pg import kept_pg, temporary_pg
    from gen_matching import generate, open_bench_app

    load = {"before": uptime()}
    print(f"load: {load['before']}", flush=True)
    results: dict[str, Any] = {}
    for db in args.db.split(","):
        for size in args.sizes:
            work = args.work / f"records-{size}" if db == "sqlite" else args.work / "pg-data"
            drop: Callable[[], None] = lambda: None  # noqa: E731
            if db == "sqlite":
                url = f"sqlite:///{work / 'mailroom.sqlite3'}"
            elif args.pg_keep:
                url = kept_pg(args.pg_admin, f"mailroom_bench_match_{size}")
            else:
                url, drop = temporary_pg(args.pg_admin, f"match_{size}")
            try:
                app = open_bench_app(work, url)
                started = time.perf_counter()
                generate(app, size)
                app.close()
                built = time.perf_counter() - started
                args.size_now = size
                key = f"{db}/{size}"
                results[key] = {"db_built_s": built, "after": child(url, work, args, SRC)}
                if args.before is not None:
                    old = args.before.resolve() / "src"
                    results[key]["before"] = child(url, work, args, old)
            finally:
                drop()
            for which in ("before", "after"):
                if which in results[key]:
                    got = results[key][which]
                    label = f"{db} {size:>9,} records, {which}"
                    print(line(label, got), flush=True)
            print(f"  (database made in {built:.1f}s; {uptime()})", flush=True)
    load["after"] = uptime()
    path = write_result(
        "matching",
        {"messages": args.messages, "repeat": args.repeat, "load": load, "runs": results},
    )
    print(f"load: {load['after']}")
    print(f"wrote {path.relative_to(path.parents[2])}")


if __name__ == "__main__":
    main()

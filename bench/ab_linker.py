"""Older and newer `plan_links` side by side in one process, on one database bench_matching.py
made: the dict baseline, the older linker and this tree's, timed in interleaved rounds
(the two linkers' order swapped every round), best and median round of each.

Separate processes on this 2-core machine differ by up to 1.5x for the same code (the
dict baseline too), which hides a 1.3x change; one process shares the index, the heap
and the load between both. The older `matching/linker.py` is loaded from `--before DIR`
(`git archive COMMIT src | tar -x -C DIR`) beside this tree's and calls this tree's
`address_index` and `index`, so it measures the linker's change only (the older one
calls `address_index.view`, still there). The plans of both are checked equal first.

    .venv/bin/python bench/ab_linker.py --before /tmp/before --db postgresql --size 1000000
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="DIR holding older src/")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="postgresql")
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--work", type=Path, default=Path("/tmp/mailroom-bench"))
    parser.add_argument(
        "--pg-admin",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="the server holding bench_matching.py --pg-keep's databases",
    )
    args = parser.parse_args()

    from gen_matching import address, messages, open_bench_app
    from sqlalchemy import select

    from mailroom.db.models import Company
    from mailroom.matching.linker import plan_links

    path = args.before.resolve() / "src/mailroom/matching/linker.py"
    spec = importlib.util.spec_from_file_location("older_linker", path)
    assert spec is not None and spec.loader is not None, path
    older: Any = importlib.util.module_from_spec(spec)
    sys.modules["older_linker"] = older  # dataclasses look their module up
    spec.loader.exec_module(older)

    if args.db == "sqlite":
        work = args.work / f"records-{args.size}"
        url = f"sqlite:///{work / 'mailroom.sqlite3'}"
    else:
        work = args.work / "pg-data"
        base = args.pg_admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
        url = f"{base}/mailroom_bench_match_{args.size}"
    app = open_bench_app(work, url)
    inputs = messages(args.size, 4000)
    table = {address(i): [(i + 1, "main")] for i in range(args.size)}
    with app.sessions() as session:
        company_id = session.scalar(select(Company.id).where(Company.name == "Bench"))
        assert company_id is not None, "run bench_matching.py (--pg-keep) first"
        new = plan_links(session, company_id=company_id, inputs=inputs[:200])
        old = older.plan_links(session, company_id=company_id, inputs=inputs[:200])
        assert new == old, "the two linkers plan differently"

    def baseline() -> None:
        for item in inputs:
            found = []
            for _, a in item.participants:
                found.extend(table.get(a, ()))

    def batches(plan: Callable[..., Any]) -> Callable[[], None]:
        def run() -> None:
            with app.sessions() as session:
                for start in range(0, len(inputs), 200):
                    plan(session, company_id=company_id, inputs=inputs[start : start + 200])

        return run

    runs = {"dict": baseline, "before": batches(older.plan_links), "after": batches(plan_links)}
    wall: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    for n in range(args.rounds):
        for name in ("dict", "before", "after") if n % 2 == 0 else ("dict", "after", "before"):
            started, used = time.perf_counter(), time.process_time()
            runs[name]()
            wall[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - used)
    app.close()
    batches_per_run = len(inputs) / 200
    best_dict, median_dict = min(wall["dict"]), statistics.median(wall["dict"])
    for name in runs:
        best, median = min(wall[name]), statistics.median(wall[name])
        print(
            f"{args.db} {args.size:,} {name:<6} best {best / batches_per_run * 1e3:.3f} ms a "
            f"batch ({best_dict / best:.3f}x dict, {len(inputs) / best:,.0f} msg/s), median "
            f"{median / batches_per_run * 1e3:.3f} ({median_dict / median:.3f}x, "
            f"{len(inputs) / median:,.0f} msg/s), CPU {min(cpu['dict']) / min(cpu[name]):.3f}x"
        )


if __name__ == "__main__":
    main()

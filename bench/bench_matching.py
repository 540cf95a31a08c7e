"""Matching throughput: messages per second against 10,000 and 1,000,000 records'
addresses, beside a plain-dict-lookup baseline measured in the same run.

What is timed is `matching.linker.plan_links` — the address, domain, opportunity, thread
and case lookups ingestion runs for every message — over SQLite, in batches of 200
messages and one message at a time (as ingestion calls it). The baseline resolves the
same participants with a Python dict {address: [record]} held in memory: the floor any
database-backed matcher is compared with. Each figure is the best of --repeat runs.

    .venv/bin/python bench/bench_matching.py                       # 10k and 1M records
    .venv/bin/python bench/bench_matching.py --sizes 10000 --messages 2000

The databases are generated (bench/gen_matching.py) under --work (default
/tmp/mailroom-bench) and reused by later runs. The rates go to bench/results/matching.json
with the run's commit and package versions (bench/_meta.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _meta import write_result
from gen_matching import address, generate, messages, open_bench_app

from mailroom.matching.linker import MatchInput, plan_links


def best(repeat: int, run: Callable[[], None]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def bench(size: int, count: int, repeat: int, work: Path) -> dict[str, float]:
    app = open_bench_app(work / f"records-{size}")
    started = time.perf_counter()
    company_id = generate(app, size)
    built = time.perf_counter() - started
    inputs = messages(size, count)
    table = {address(i): [(i + 1, "main")] for i in range(size)}

    def baseline() -> None:
        for item in inputs:
            found = []
            for _, a in item.participants:
                found.extend(table.get(a, ()))

    def batched() -> None:
        with app.sessions() as session:
            for start in range(0, len(inputs), 200):
                plan_links(session, company_id=company_id, inputs=inputs[start : start + 200])

    singles: list[MatchInput] = inputs[: max(1, count // 4)]

    def one_by_one() -> None:
        with app.sessions() as session:
            for item in singles:
                plan_links(session, company_id=company_id, inputs=[item])

    with app.sessions() as session:  # the plans are right, not just fast
        plan = plan_links(session, company_id=company_id, inputs=inputs[:50])
        expected = sum(1 for i in inputs[:50] for _, a in i.participants if a in table)
        assert sum(1 for links in plan.values() for x in links if x.reason == "address:main") >= (
            expected - 5
        )
    rates = {
        "dict": count / best(repeat, baseline),
        "batch": count / best(repeat, batched),
        "single": len(singles) / best(repeat, one_by_one),
    }
    app.close()
    print(
        f"{size:>9,} records (db built in {built:.1f}s): "
        f"dict {rates['dict']:>12,.0f} msg/s | plan_links batch-200 {rates['batch']:>9,.0f} "
        f"msg/s ({rates['batch'] / rates['dict']:.4f}x dict) | one-by-one "
        f"{rates['single']:>7,.0f} msg/s ({rates['single'] / rates['dict']:.4f}x dict)",
        flush=True,
    )
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("/tmp/mailroom-bench"))
    args = parser.parse_args()
    results = {size: bench(size, args.messages, args.repeat, args.work) for size in args.sizes}
    path = write_result(
        "matching",
        {
            "messages": args.messages,
            "repeat": args.repeat,
            "msg_per_s": {str(size): rates for size, rates in results.items()},
        },
    )
    print(f"wrote {path.relative_to(path.parents[2])}")
    if len(results) > 1:
        small, large = results[min(results)], results[max(results)]
        print(
            f"{max(results):,} vs {min(results):,} records: batch throughput ratio "
            f"{large['batch'] / small['batch']:.2f}, one-by-one "
            f"{large['single'] / small['single']:.2f} (1.0 = independent of record count)"
        )


if __name__ == "__main__":
    main()

"""Sum py-spy's collapsed stacks (`--format raw`) per process and function.

    .venv/bin/python bench/spy_shares.py /tmp/spy.txt [--top 40] [--under sync_mailbox]

For each process of the recording (py-spy `--subprocesses` puts `process PID:"cmd"`
frames at the root of each stack, a child's under its parent's): its samples, and the
functions with the largest inclusive share
of them (a function counted once per stack, however deep it recurs). `--under NAME`: only
the stacks passing through a function named NAME, shares of those. Idle samples are not
recorded by py-spy unless `--idle`, so a share is of the time the process was running.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter, defaultdict
from pathlib import Path

FRAME = re.compile(r"^(?P<name>[^ ]+) \((?P<file>[^:]+):\d+\)$")


def short(frame: str) -> str:
    """`name (path/to/module.py:12)` as `module.py:name` (the line dropped)."""
    match = FRAME.match(frame)
    if match is None:
        return frame
    return f"{Path(match['file']).name}:{match['name']}"


def joined(frames: list[str]) -> list[str]:
    """The frames of a stack split at `;`, a process frame's command line (which may hold a
    `;`, as `python -c "import x; x.main()"` does) joined back into one."""
    out: list[str] = []
    for frame in frames:
        if out and out[-1].startswith("process ") and not out[-1].endswith('"'):
            out[-1] += ";" + frame
        else:
            out.append(frame)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--under", default=None, help="only stacks through this function")
    args = parser.parse_args()
    totals: Counter[str] = Counter()
    functions: dict[str, Counter[str]] = defaultdict(Counter)
    for line in args.file.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = joined(stack.split(";"))
        processes = [f for f in frames if f.startswith("process ")]
        process = processes[-1] if processes else "process ?"
        names = [short(f) for f in frames if not f.startswith("process ")]
        if args.under is not None and not any(n.endswith(f":{args.under}") for n in names):
            continue
        totals[process] += int(count)
        for name in set(names):
            functions[process][name] += int(count)
    for process, total in totals.most_common():
        print(f"{process[:100]}: {total} samples")
        for name, count in functions[process].most_common(args.top):
            print(f"  {100 * count / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()

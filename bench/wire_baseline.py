"""The practical limit of an initial sync: fetch and parse headers, store nothing.

    .venv/bin/python bench/wire_baseline.py --host H --port P --user U --password W

Two worker processes (as Mailroom's fetch workers, sync/fetch_worker.py), each with its
own imaplib connection: EXAMINE the folder, then for batch i of 200 UIDs (worker i mod
2) `UID FETCH lo:hi BODY.PEEK[]` and `mail.parse.parse_headers` of each message. No
hashing, no blob store, no database: the cheapest correct way to read every message's
headers off the wire. Prints the messages and seconds; sync_bench.py runs it in the same
run as Mailroom's initial sync and prints Mailroom / this.
"""

from __future__ import annotations

import argparse
import imaplib
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

BATCH = 200


def uids(conn: imaplib.IMAP4, folder: str) -> list[int]:
    """Every UID of `folder`, ascending (EXAMINE: read-only, like the sync)."""
    typ, _ = conn.select(folder, readonly=True)
    assert typ == "OK", typ
    typ, data = conn.uid("SEARCH", "ALL")
    assert typ == "OK", typ
    return sorted(int(u) for u in (data[0] or b"").split())


def work(args: argparse.Namespace) -> None:
    """One worker: fetch and header-parse batches `index`, `index + n`, … of the folder."""
    from mailroom.mail.parse import parse_headers

    conn = imaplib.IMAP4(args.host, args.port)
    conn.login(args.user, args.password)
    every = uids(conn, args.folder)
    batches = [every[i : i + BATCH] for i in range(0, len(every), BATCH)]
    parsed = 0
    for batch in batches[args.worker :: args.processes]:
        typ, data = conn.uid("FETCH", f"{batch[0]}:{batch[-1]}", "(BODY.PEEK[])")
        assert typ == "OK", typ
        for item in data:
            if isinstance(item, tuple):
                parse_headers(item[1])
                parsed += 1
    conn.logout()
    print(parsed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--folder", default="INBOX")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        work(args)
        return
    start = time.perf_counter()
    workers = [
        subprocess.Popen(
            [sys.executable, __file__, *sys.argv[1:], "--worker", str(k)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for k in range(args.processes)
    ]
    total = 0
    for proc in workers:
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"a baseline worker failed ({proc.returncode})")
        total += int(out.strip())
    print(f"{total} messages in {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()

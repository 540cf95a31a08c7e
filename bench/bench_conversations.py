"""Conversations in the initial sync: `assign_conversations` replayed, old code against new.

    # once per size: the in-process initial sync of the bench mailbox, recording each
    # batch's ThreadInputs (and keeping the database they were stored in)
    .venv/bin/python bench/bench_conversations.py record --messages 20000 \
        --cache /tmp/ingest-cache --out /tmp/conv-bench
    # then: the recorded batches replayed into two fresh databases, each batch's rows
    # copied in first (as Segment.flush inserts them), then threaded by the code of
    # COMMIT in one and by this tree's in the other, alternately first; CPU of each call
    .venv/bin/python bench/bench_conversations.py replay --messages 20000 \
        --out /tmp/conv-bench --before HEAD~1

The replay checks that both databases end with the same conversations (the same
partition of identities, and the same labels), and prints the CPU per batch of each side,
their ratio and the load average. `--only new|old --repeat N` replays one side alone (for
py-spy).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pickle
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

USER = "bench"


def record(args: argparse.Namespace) -> None:
    """The in-process initial sync with `assign_conversations` wrapped to keep its batches."""
    from bench.sync_bench import SERVER_PID, cached_maildir, make_target, run  # noqa: F401
    from mailroom.ingest import store
    from mailroom.sync.engine import sync_mailbox
    from mailroom_testing.dovecot import DovecotServer

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="mailroom-conv-"))
    work = Path(tempfile.mkdtemp(prefix="mailroom-conv-work-"))
    dovecot = DovecotServer(root)
    dovecot.start()
    try:
        dovecot.add_user(USER, "bench-password-1")
        dovecot.session(USER)
        maildir = dovecot.root / "mail" / USER / "Maildir"
        folder, _ = cached_maildir(args.cache, args.messages)
        maildir.mkdir(parents=True, exist_ok=True)
        subprocess.run(["rm", "-rf", str(maildir / "cur")], check=True)
        subprocess.run(["cp", "-al", str(folder / "cur"), str(maildir / "cur")], check=True)
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", f"{dovecot.mail_user}:", str(maildir)], check=True)
        dovecot.doveadm("mailbox", "status", "-u", USER, "messages", "INBOX")
        app, box_id, _ = make_target(dovecot, work / "mailroom", None)
        batches: list[tuple[int, list[Any]]] = []
        real = store.assign_conversations

        def keep(session: Any, *, company_id: int, inputs: Any, **kw: Any) -> Any:
            batches.append((company_id, list(inputs)))
            return real(session, company_id=company_id, inputs=inputs, **kw)

        store.assign_conversations = keep  # type: ignore[assignment]
        report = sync_mailbox(app, box_id)
        print(f"synced {report.fetched}, error {report.error}, {len(batches)} batches")
        app.close()
        db = out / f"source-{args.messages}.sqlite3"
        with sqlite3.connect(work / "mailroom" / "mailroom.sqlite3") as src:
            dst = sqlite3.connect(db)
            src.backup(dst)
            dst.close()
        (out / f"batches-{args.messages}.pickle").write_bytes(pickle.dumps(batches))
    finally:
        dovecot.stop()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def module_at(commit: str) -> ModuleType:
    """matching/conversations.py as it was at `commit`, imported under another name."""
    text = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{commit}:src/mailroom/matching/conversations.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp(prefix="conv-before-")) / "conversations_before.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("conversations_before", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


class Side:
    """One fresh database and the `assign_conversations` that threads into it."""

    def __init__(self, name: str, fn: Callable[..., Any], source: Path, work: Path) -> None:
        from mailroom.app import open_app
        from mailroom.config import load_settings
        from mailroom.crm.companies import add_company
        from mailroom.db.engine import transaction
        from mailroom.security.secrets import create_key_file

        self.name, self.fn, self.cpu, self.wall = name, fn, [0.0], [0.0]
        self.per_batch: list[float] = []
        settings = load_settings(work / name)
        create_key_file(settings.key_path)
        self.app = open_app(settings)
        with transaction(self.app.sessions) as session:
            add_company(session, name="Acme", domains=["acme.example"])
        self.source = source

    def batch(self, company_id: int, inputs: list[Any], internal: Callable[[str], bool]) -> None:
        """Copy the batch's rows in, then thread them (timed) in the same transaction."""
        from sqlalchemy import text

        from mailroom.db.engine import transaction

        with transaction(self.app.sessions) as session:
            conn = session.connection().connection.driver_connection
            assert conn is not None
            names = [item.identity for item in inputs]
            conn.executemany(
                "INSERT INTO messages SELECT * FROM src.messages"
                " WHERE company_id = ? AND identity = ?",
                [(company_id, n) for n in names],
            )
            session.execute(text("SELECT 1"))
            cpu, wall = time.thread_time(), time.perf_counter()
            self.fn(session, company_id=company_id, inputs=inputs, internal=internal)
            self.per_batch.append(time.thread_time() - cpu)
            self.cpu[0] += self.per_batch[-1]
            self.wall[0] += time.perf_counter() - wall

    def attach(self) -> None:
        """Make the source database readable as `src` on the (single, pooled) connection."""
        from sqlalchemy import event

        @event.listens_for(self.app.engine, "connect")
        def _attach(dbapi: Any, _record: Any) -> None:
            dbapi.execute(f"ATTACH DATABASE '{self.source}' AS src")

        self.app.engine.dispose()

    def conversations(self) -> dict[str, int]:
        """identity → conversation label, every node."""
        with self.app.sessions() as session:
            conn = session.connection().connection.driver_connection
            assert conn is not None
            return dict(conn.execute("SELECT identity, conversation_id FROM conversation_nodes"))


def replay(args: argparse.Namespace) -> None:
    """Both sides over the recorded batches, alternately first; checked and printed."""
    from mailroom.matching import conversations as new
    from mailroom.matching.directory import load_directory

    out: Path = args.out
    source = out / f"source-{args.messages}.sqlite3"
    batches = pickle.loads((out / f"batches-{args.messages}.pickle").read_bytes())
    work = Path(tempfile.mkdtemp(prefix="conv-replay-"))
    try:
        old = module_at(args.before)
        sides = []
        if args.only in (None, "old"):
            sides.append(Side("old", old.assign_conversations, source, work))
        if args.only in (None, "new"):
            sides.append(Side("new", new.assign_conversations, source, work))
        for side in sides:
            side.attach()
        with sides[0].app.sessions() as session:
            internal = load_directory(session, batches[0][0]).is_internal
        load = os.getloadavg()
        for repeat in range(args.repeat):
            for n, (company_id, inputs) in enumerate(batches):
                order = sides if (n + repeat) % 2 == 0 else sides[::-1]
                for side in order:
                    side.batch(company_id, inputs, internal)
            if repeat + 1 < args.repeat:
                for side in sides:
                    side.app.close()
                shutil.rmtree(work)
                work.mkdir()
                fresh = [Side(s.name, s.fn, source, work) for s in sides]
                for side, kept in zip(fresh, sides, strict=True):
                    side.attach()
                    side.cpu, side.wall, side.per_batch = kept.cpu, kept.wall, kept.per_batch
                sides = fresh
        load_after = os.getloadavg()
        count = len(batches) * args.repeat
        print(
            f"{args.messages} messages, {count} batches ({args.repeat} passes); load "
            f"{load[0]:.2f} {load[1]:.2f} before, {load_after[0]:.2f} {load_after[1]:.2f} after"
        )
        for side in sides:
            ms = sorted(side.per_batch)
            print(
                f"{side.name}: CPU {side.cpu[0]:.2f} s ({1000 * side.cpu[0] / count:.1f} ms a "
                f"batch, median {1000 * ms[len(ms) // 2]:.1f} ms), wall {side.wall[0]:.2f} s"
            )
        if len(sides) == 2:
            a, b = sides
            print(f"new / old CPU: {b.cpu[0] / a.cpu[0]:.3f}")
            pairs = sorted(y / x for x, y in zip(a.per_batch, b.per_batch, strict=True) if x)
            quartiles = [pairs[len(pairs) * q // 4] for q in (1, 2, 3)]
            print("per-batch ratio new / old, quartiles " + " ".join(f"{q:.3f}" for q in quartiles))
            ca, cb = a.conversations(), b.conversations()
            if ca != cb:
                raise SystemExit(f"DIFFERENT conversations: {len(ca)} against {len(cb)} nodes")
            print(f"same conversations: {len(ca)} nodes, {len(set(ca.values()))} conversations")
        for side in sides:
            side.app.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["record", "replay"])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/ingest-cache"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/conv-bench"))
    parser.add_argument("--before", default="HEAD", help="the commit of the old side")
    parser.add_argument("--only", choices=["old", "new"], default=None)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    (record if args.mode == "record" else replay)(args)


if __name__ == "__main__":
    main()

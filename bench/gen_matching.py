"""Generator for bench_matching.py: a Mailroom database with N records' addresses, and
the messages to match against it.

Records are written with bulk (executemany) inserts in chunks, so 1,000,000 records take
a minute or so, not hours. Every record is a contact with one address
`person<i>@company<i // 7>.example`; every 10th company's account also holds its domain,
so domain lookups find something. Messages are deterministic (seeded): each has a From,
a To and two Cc participants, about half of them holding a record's address.

    .venv/bin/python bench/gen_matching.py --records 10000 --out /tmp/mr-bench-10k
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import time
from pathlib import Path

from sqlalchemy import insert, select

from mailroom.app import App, open_app
from mailroom.config import Settings
from mailroom.db.engine import transaction
from mailroom.db.models import Company, Record, RecordDomain, RecordEmail, utcnow
from mailroom.matching.linker import MatchInput
from mailroom.security.secrets import encode_key, new_key

CHUNK = 50_000


def address(i: int) -> str:
    return f"person{i}@company{i // 7}.example"


def open_bench_app(out: Path, url: str | None = None) -> App:
    """The bench's app: SQLite in `out`, or the database at `url` (data dir `out`)."""
    out.mkdir(parents=True, exist_ok=True)
    settings = Settings(
        data_dir=out,
        database_url=url or f"sqlite:///{out / 'mailroom.sqlite3'}",
        secret_key_b64=encode_key(new_key()),
    )
    return open_app(settings)


def generate(app: App, records: int) -> int:
    """Fill the database with `records` contacts (+ accounts with domains); company id."""
    with transaction(app.sessions) as session:
        found = session.scalar(select(Company.id).where(Company.name == "Bench"))
        if found is not None:
            return found
        company = Company(name="Bench")
        session.add(company)
        session.flush()
        company_id = company.id
    now = utcnow()
    with app.engine.begin() as conn:
        for start in range(0, records, CHUNK):
            stop = min(start + CHUNK, records)
            conn.execute(
                insert(Record.__table__),
                [
                    {
                        "id": i + 1,
                        "company_id": company_id,
                        "type": "contact",
                        "name": f"Person {i}",
                        "fields": {},
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in range(start, stop)
                ],
            )
            conn.execute(
                insert(RecordEmail.__table__),
                [
                    {
                        "record_id": i + 1,
                        "company_id": company_id,
                        "field": "main",
                        "address": address(i),
                    }
                    for i in range(start, stop)
                ],
            )
        accounts = list(range(0, records // 7, 10))
        base = records + 1
        for start in range(0, len(accounts), CHUNK):
            part = accounts[start : start + CHUNK]
            conn.execute(
                insert(Record.__table__),
                [
                    {
                        "id": base + n,
                        "company_id": company_id,
                        "type": "account",
                        "name": f"Company {c}",
                        "fields": {},
                        "created_at": now,
                        "updated_at": now,
                    }
                    for n, c in enumerate(part, start=start)
                ],
            )
            conn.execute(
                insert(RecordDomain.__table__),
                [
                    {
                        "record_id": base + n,
                        "company_id": company_id,
                        "domain": f"company{c}.example",
                    }
                    for n, c in enumerate(part, start=start)
                ],
            )
    return company_id


def messages(records: int, count: int, *, seed: int = 7) -> list[MatchInput]:
    """`count` messages, 4 external participants each, about half of them known."""
    rng = random.Random(seed)

    def someone() -> str:
        if rng.random() < 0.5:
            return address(rng.randrange(records))
        return f"stranger{rng.randrange(10**9)}@nowhere{rng.randrange(1000)}.example"

    # What ingestion says of such a message (no references, a subject of its own): its
    # conversation is new, of this batch only (conversations.assign_conversations). Source
    # older than that flag (`bench_matching.py --before`) does not take it.
    extra = {"new_conversation": True} if "new_conversation" in _fields(MatchInput) else {}
    return [
        MatchInput(
            message_id=n + 1,
            identity=f"bench{n}@bench.example",
            participants=tuple((role, someone()) for role in ("from", "to", "cc", "cc")),
            subject=f"Message {n}",
            **extra,  # type: ignore[arg-type]
        )
        for n in range(count)
    ]


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    app = open_bench_app(args.out)
    started = time.perf_counter()
    generate(app, args.records)
    print(f"{args.records} records in {time.perf_counter() - started:.1f}s at {args.out}")
    app.close()


if __name__ == "__main__":
    main()

"""Insert many rows and learn their ids, in the order given, with few statements.

SQLite: one multi-row `INSERT … RETURNING key, id` (RETURNING in parameter order would
cost one statement per row there); the key column, unique among the rows, maps the ids
back. PostgreSQL: the ids are drawn from the table's sequence first (`nextval` over
`generate_series`), then the rows go in by the driver's executemany (psycopg's pipeline
of one short, prepared single-row INSERT). The multi-row INSERT … RETURNING that
SQLAlchemy builds for PostgreSQL has a placeholder per value (26 x 200 for a batch of
messages), and psycopg parses a statement that long again on every call (it caches only
short ones): in isolation twice as slow as drawing the ids, and 37 of a 120 s
20,000-message sync at load 12 (bench/README.md, "PostgreSQL").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table, insert, text
from sqlalchemy.orm import Session

_NEXT_IDS = text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)")


def insert_with_ids(
    session: Session, table: Table, rows: Sequence[Mapping[str, Any]], *, key: str
) -> list[int]:
    """Insert `rows` into `table` (its primary key `id`); their ids, in the rows' order.
    `key` names a column whose values are unique among `rows`."""
    if not rows:
        return []
    if session.get_bind().dialect.name == "postgresql":
        ids = [int(i) for i in session.scalars(_NEXT_IDS, {"table": table.name, "n": len(rows)})]
        session.execute(insert(table), [{**row, "id": i} for row, i in zip(rows, ids, strict=True)])
        return ids
    inserted = session.execute(insert(table).returning(table.c[key], table.c.id), list(rows))
    returned = {value: row_id for value, row_id in inserted}
    return [returned[row[key]] for row in rows]

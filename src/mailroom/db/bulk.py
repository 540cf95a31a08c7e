"""Insert many rows and learn their ids, in the order given, with few statements.

SQLite: the rows go in by one executemany of a prepared single-row INSERT, as tuples, with
the column types' own bind processing (SQLAlchemy's, so the stored values are the ones its
compiled INSERT would store) but none of its per-row statement machinery: building the
parameters of a compiled multi-row INSERT cost more than SQLite's own work on the rows
(bench/README.md, "Against the practical limit"). When the ids are wanted they are chosen
first, after the table's highest: every write transaction on SQLite begins IMMEDIATE
(db/engine.py), so no other connection inserts meanwhile, and these tables' INTEGER
PRIMARY KEY (no AUTOINCREMENT) would have taken the same ids. PostgreSQL: the ids are
drawn from the table's sequence first (`nextval` over `generate_series`), then the rows,
the same tuples, go in by one COPY … FROM STDIN in the session's transaction (psycopg
adapting each value as for an INSERT; its errors raised as SQLAlchemy's). SQLAlchemy's
multi-row INSERT … RETURNING has a placeholder per value and psycopg parses a statement
that long again on every call (37 of a 120 s 20,000-message sync at load 12,
bench/README.md, "PostgreSQL"); the driver's executemany that replaced it still costs the
server a statement per row, where COPY streams them (bench/README.md, "Round 4").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Column, Table, func, insert, select, text
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

_NEXT_IDS = text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)")


def insert_with_ids(
    session: Session, table: Table, rows: Sequence[Mapping[str, Any]], *, key: str
) -> list[int]:
    """Insert `rows` into `table` (its primary key `id`); their ids, in the rows' order.
    `key` names a column whose values are unique among `rows` (kept for the callers; the
    ids no longer need it)."""
    if not rows:
        return []
    dialect = session.get_bind().dialect
    if dialect.name == "postgresql":
        ids = [int(i) for i in session.scalars(_NEXT_IDS, {"table": table.name, "n": len(rows)})]
        _copy(session, table, rows, ids=ids)
        return ids
    if dialect.name == "sqlite" and not _sqlite_autoincrement(table):
        session.flush()  # what session.execute's autoflush would do before the INSERT
        highest = session.scalar(select(func.max(table.c.id))) or 0
        ids = list(range(highest + 1, highest + 1 + len(rows)))
        _executemany(session, table, rows, ids=ids)
        return ids
    inserted = session.execute(insert(table).returning(table.c[key], table.c.id), list(rows))
    returned = {value: row_id for value, row_id in inserted}
    return [returned[row[key]] for row in rows]


def insert_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert `rows` into `table` (same keys in every row), as one executemany."""
    if not rows:
        return
    name = session.get_bind().dialect.name
    if name == "sqlite":
        session.flush()
        _executemany(session, table, rows, ids=None)
        return
    if name == "postgresql":
        _copy(session, table, rows, ids=None)
        return
    session.execute(insert(table), list(rows))


def _sqlite_autoincrement(table: Table) -> bool:
    return bool(table.dialect_options["sqlite"].get("autoincrement"))


def _executemany(
    session: Session, table: Table, rows: Sequence[Mapping[str, Any]], *, ids: list[int] | None
) -> None:
    """One driver executemany of `rows` as tuples (`_tuples`)."""
    connection = session.connection()
    columns, tuples = _tuples(connection.dialect, table, rows, ids=ids)
    preparer = connection.dialect.identifier_preparer
    names = ", ".join(preparer.quote(c.name) for c in columns)
    marks = ", ".join("?" for _ in columns)
    statement = f"INSERT INTO {preparer.format_table(table)} ({names}) VALUES ({marks})"
    connection.exec_driver_sql(statement, tuples)


def _copy(
    session: Session, table: Table, rows: Sequence[Mapping[str, Any]], *, ids: list[int] | None
) -> None:
    """PostgreSQL: `rows` as tuples (`_tuples`) through one COPY … FROM STDIN in the
    session's transaction (psycopg adapts each value as it would for an INSERT)."""
    session.flush()  # what session.execute's autoflush would do before the INSERT
    connection = session.connection()
    columns, tuples = _tuples(connection.dialect, table, rows, ids=ids)
    preparer = connection.dialect.identifier_preparer
    names = ", ".join(preparer.quote(c.name) for c in columns)
    statement = f"COPY {preparer.format_table(table)} ({names}) FROM STDIN"
    driver: Any = connection.connection.driver_connection
    import psycopg

    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for values in tuples:
                copy.write_row(values)
    except psycopg.Error as error:  # raised as SQLAlchemy raises a statement's errors
        raise DBAPIError.instance(statement, None, error, psycopg.Error) from error


def _tuples(
    dialect: Dialect, table: Table, rows: Sequence[Mapping[str, Any]], *, ids: list[int] | None
) -> tuple[list[Column[Any]], list[tuple[Any, ...]]]:
    """The columns and the rows as tuples: the given columns (the id first when `ids`),
    then the Python-side defaults of the others (as SQLAlchemy's INSERT fills them), each
    value through its column type's bind processor."""
    given = list(rows[0])
    defaulted = [
        c
        for c in table.columns
        if c.name not in rows[0] and c.default is not None and c.name != "id"
    ]
    columns = [table.c[name] for name in given] + defaulted
    if ids is not None:
        columns.insert(0, table.c.id)
    processors = [_processor(c, dialect) for c in columns]
    makers = [_default_maker(c) for c in defaulted]
    plain = all(p is None for p in processors)
    tuples: list[tuple[Any, ...]] = []
    for index, row in enumerate(rows):
        if len(row) != len(given):
            raise ValueError(f"{table.name}: every row needs the same columns as the first")
        values = [row[name] for name in given]
        values += [make() for make in makers]
        if ids is not None:
            values.insert(0, ids[index])
        if not plain:
            values = [v if p is None else p(v) for v, p in zip(values, processors, strict=True)]
        tuples.append(tuple(values))
    return columns, tuples


def _processor(column: Column[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    processor: Callable[[Any], Any] | None = column.type._cached_bind_processor(dialect)
    return processor


def _default_maker(column: Column[Any]) -> Callable[[], Any]:
    """The column's Python-side default, as SQLAlchemy's INSERT would compute it per row."""
    default: Any = column.default
    if default.is_scalar:
        value = default.arg
        return lambda: value
    if default.is_callable:
        arg = default.arg
        return lambda: arg(None)
    raise ValueError(f"{column.table.name}.{column.name}: unsupported default {default!r}")

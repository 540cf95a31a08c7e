"""One statement sent on a PostgreSQL connection now, its answer read later.

A query is a round trip to the server's process: ~0.1 ms on a quiet machine, 1-3 ms when
both cores are busy and the server waits for one (bench/README.md, "Round 3: PostgreSQL").
A caller with work that does not need the answer yet sends the statement, does the work
meanwhile, then reads the answer (matching.address_index: the index's version check,
sent before the batch's addresses are looked up in memory).

The statement goes through libpq's asynchronous calls on the connection's own socket,
inside the transaction the connection already has open (never on one not yet begun: what
the statement sees must be what the rest of the transaction would), holding psycopg's
connection lock from the send to the end of the answer, so no other statement can
interleave. `Asked.answer` must be called (or `Asked.close`, which reads and drops the
answer) before the connection runs anything else. Errors are raised as SQLAlchemy's
`DBAPIError` subclasses, as a statement run through SQLAlchemy would raise them.
"""

from __future__ import annotations

import select
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

TEXT_OID = 25  # every parameter is sent as text and cast in the statement


class Asked:
    """A statement sent and not yet answered (`answer` reads its one row)."""

    __slots__ = ("_dbapi", "_params", "_sql")

    def __init__(self, dbapi: Any, sql: bytes, params: list[bytes]) -> None:
        self._dbapi: Any = dbapi  # the psycopg connection, its lock held until answered
        self._sql, self._params = sql, params

    def answer(self) -> tuple[bytes | None, ...] | None:
        """The first row's values as text (None for NULL); None when there is no row."""
        if self._dbapi is None:
            raise RuntimeError("already answered")
        import psycopg
        from psycopg import errors, pq

        dbapi, self._dbapi = self._dbapi, None
        try:
            results = _read(dbapi.pgconn)
        except psycopg.Error as error:
            dbapi.close()  # an answer half read: the connection cannot be used again
            raise _wrapped(error, self._sql, self._params, lost=True) from error
        except BaseException:
            dbapi.close()
            raise
        finally:
            dbapi.lock.release()
        for result in results:
            if result.status != pq.ExecStatus.TUPLES_OK:
                failed = errors.error_from_result(result, encoding=dbapi.info.encoding)
                raise _wrapped(failed, self._sql, self._params) from failed
        if not results or not results[0].ntuples:
            return None
        first = results[0]
        return tuple(first.get_value(0, column) for column in range(first.nfields))

    def close(self) -> None:
        """Read and drop the answer if nobody has (an error raised meanwhile)."""
        if self._dbapi is not None:
            self.answer()


def ask(connection: Connection, sql: bytes, params: Sequence[object]) -> Asked | None:
    """Send `sql` (parameters `$1`, `$2`… as text) on `connection` without waiting; None
    when it cannot be sent ahead (not PostgreSQL through psycopg, no transaction open yet,
    a pipeline or another thread using it): then run it the ordinary way."""
    if connection.dialect.name != "postgresql" or connection.dialect.driver != "psycopg":
        return None
    from psycopg import pq

    dbapi: Any = connection.connection.driver_connection
    pgconn = dbapi.pgconn
    if (
        pgconn.transaction_status != pq.TransactionStatus.INTRANS
        or pgconn.pipeline_status != pq.PipelineStatus.OFF
        or not dbapi.lock.acquire(blocking=False)
    ):
        return None
    import psycopg

    values = [str(p).encode() for p in params]
    try:
        pgconn.send_query_params(sql, values, [TEXT_OID] * len(values))
        while pgconn.flush():  # the socket's buffer was full: wait until it can take more
            _wait(pgconn.socket, select.POLLOUT)
    except BaseException as error:
        dbapi.close()  # a statement half sent: the connection cannot be used again
        dbapi.lock.release()
        if isinstance(error, psycopg.Error):
            raise _wrapped(error, sql, values, lost=True) from error
        raise
    return Asked(dbapi, sql, values)


def _wrapped(
    error: Exception, sql: bytes, params: list[bytes], *, lost: bool = False
) -> DBAPIError:
    """`error` as SQLAlchemy raises a driver's error (OperationalError, ProgrammingError…)."""
    import psycopg

    wrapped = DBAPIError.instance(
        sql.decode(),
        [p.decode() for p in params],
        error,
        psycopg.Error,
        connection_invalidated=lost,
    )
    assert isinstance(wrapped, DBAPIError)
    return wrapped


def _read(pgconn: Any) -> list[Any]:
    """Every result of the statement sent, waiting for the socket when libpq is busy."""
    results: list[Any] = []
    while True:
        pgconn.consume_input()
        if pgconn.is_busy():
            _wait(pgconn.socket, select.POLLIN)
            continue
        result = pgconn.get_result()
        if result is None:
            return results
        results.append(result)


def _wait(fd: int, event: int) -> None:
    poll = select.poll()  # not select.select: a busy server's descriptors pass 1024
    poll.register(fd, event)
    poll.poll()

"""The write path's SQL as text, run on the database driver (no SQLAlchemy).

Writing a batch is a handful of bulk statements whose shape never changes:
an INSERT per kind of row, a SELECT of statuses by id, an UPDATE of statuses
by id. The SQL store builds them here once, as text, from the column tuples
of :mod:`daskflow.store.columns`, and runs them through
:class:`Driver`: on a SQLite file the standard library's :mod:`sqlite3`
connection itself, elsewhere a SQLAlchemy connection's
``exec_driver_sql``. So recording runs into SQLite never imports SQLAlchemy,
and every database takes the same statements: rows go to the driver as
tuples, in one ``executemany`` per statement.

Each statement run is logged at DEBUG on ``daskflow.store.sql`` (with its
number of rows, never their values): what ``echo`` would show, and how the
tests see that a batch is a few bulk statements.
"""

from __future__ import annotations

import collections
import functools
import logging
import sqlite3
import sys
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["Driver", "Statements", "is_database_error"]

logger = logging.getLogger("daskflow.store.sql")


class Statements:
    """The write path's statements for one driver's placeholder style.

    Parameters
    ----------
    placeholder
        ``"?"`` (SQLite) or ``"%s"`` (psycopg and other ``format`` drivers).
    lock_rows
        Append ``FOR UPDATE`` to the SELECTs a write transaction reads
        statuses with (PostgreSQL: two processes folding one run's changes
        take turns; SQLite's write transaction locks the whole file anyway).

    Examples
    --------
    >>> sql = Statements("?", lock_rows=False)
    >>> sql.insert("logs", ("flow_run_id", "message"))
    'INSERT INTO logs (flow_run_id, message) VALUES (?, ?)'
    >>> sql.update("task_runs", ("state", "end_time"))
    'UPDATE task_runs SET state = ?, end_time = ? WHERE id = ?'
    >>> Statements("%s", lock_rows=True).select_in("task_runs", ("id", "state"), 2)
    'SELECT id, state FROM task_runs WHERE id IN (%s, %s) FOR UPDATE'
    """

    def __init__(self, placeholder: str, *, lock_rows: bool) -> None:
        self.placeholder = placeholder
        self.lock_rows = lock_rows
        self._made: dict[tuple[Any, ...], str] = {}

    def insert(self, table: str, columns: Sequence[str]) -> str:
        """``INSERT INTO table (columns) VALUES (...)``: values in ``columns`` order."""
        key = ("insert", table, tuple(columns))
        sql = self._made.get(key)
        if sql is None:
            sql = self._made[key] = (
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({self.marks(len(columns))})"
            )
        return sql

    def update(self, table: str, columns: Sequence[str]) -> str:
        """``UPDATE table SET columns WHERE id = ...``: values in ``columns`` order, then the id."""
        key = ("update", table, tuple(columns))
        sql = self._made.get(key)
        if sql is None:
            assignments = ", ".join(f"{name} = {self.placeholder}" for name in columns)
            sql = self._made[key] = (
                f"UPDATE {table} SET {assignments} WHERE id = {self.placeholder}"
            )
        return sql

    def select_in(
        self, table: str, columns: Sequence[str], count: int, *, lock: bool = True, where: str = ""
    ) -> str:
        """``SELECT columns FROM table WHERE id IN (count ids)``, locked in a write.

        ``where`` adds a condition (SQL text, with no placeholder).
        """
        key = ("select", table, tuple(columns), count, lock, where)
        sql = self._made.get(key)
        if sql is None:
            condition = f"id IN ({self.marks(count)})" + (f" AND {where}" if where else "")
            suffix = " FOR UPDATE" if lock and self.lock_rows else ""
            sql = f"SELECT {', '.join(columns)} FROM {table} WHERE {condition}{suffix}"
            self._made[key] = sql
        return sql

    def marks(self, count: int) -> str:
        """``count`` placeholders, comma-separated."""
        return ", ".join([self.placeholder] * count)


class Driver:
    """One connection's statements, run on the DB-API driver.

    Parameters
    ----------
    conn
        A :class:`sqlite3.Connection`, or a SQLAlchemy ``Connection`` (its
        ``exec_driver_sql`` passes text and tuples to the driver as they are).
    """

    def __init__(self, conn: Any) -> None:
        self._direct = isinstance(conn, sqlite3.Connection)
        self._conn = conn

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of one query."""
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s", sql)
        if self._direct:
            return self._conn.execute(sql, params).fetchall()
        return [tuple(row) for row in self._conn.exec_driver_sql(sql, tuple(params))]

    def records(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """The rows of one query, each with its columns as attributes (``row.id``)."""
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s", sql)
        if not self._direct:
            return list(self._conn.exec_driver_sql(sql, tuple(params)))
        cursor = self._conn.execute(sql, params)
        record = _record_type(tuple(column[0] for column in cursor.description))
        return [record._make(row) for row in cursor.fetchall()]

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s", sql)
        if self._direct:
            return int(self._conn.execute(sql, params).rowcount)
        return int(self._conn.exec_driver_sql(sql, tuple(params)).rowcount)

    def many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement once per row, as one ``executemany`` (none for no rows)."""
        rows = rows if isinstance(rows, list) else list(rows)
        if not rows:
            return
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s (%d rows)", sql, len(rows))
        if self._direct:
            self._conn.executemany(sql, rows)
        else:
            self._conn.exec_driver_sql(sql, rows)


@functools.lru_cache(maxsize=64)
def _record_type(columns: tuple[str, ...]) -> Any:
    """A named tuple type for rows of these columns."""
    return collections.namedtuple("Record", columns)


def is_database_error(exc: BaseException) -> bool:
    """Whether ``exc`` is the database's refusal (not a bug of ours).

    :mod:`sqlite3`'s errors, or SQLAlchemy's wrapping of any driver's (checked
    only where SQLAlchemy was imported: it is not imported for that).
    """
    if isinstance(exc, sqlite3.Error):
        return True
    sa_exc = sys.modules.get("sqlalchemy.exc")
    return sa_exc is not None and isinstance(exc, sa_exc.DBAPIError)

"""What a SQLite run store needs: its URL and file, WAL mode, pragmas, a direct connection.

- A store named by a path is a SQLite file (:func:`to_url`: ``~`` expanded,
  made absolute).
- A plain ``sqlite:///file`` store is written through the standard library's
  :mod:`sqlite3` directly (:func:`connect`), not through SQLAlchemy: a flow
  run records into it without importing SQLAlchemy, which costs about 0.2 s of
  CPU in a process whose cluster is starting meanwhile. SQLAlchemy's engine
  (:func:`sqlite_pragmas`) serves the reads (CLI, panel, history) and the
  creation or upgrade of the tables, and is made only when one is needed.
- The file runs in WAL mode (:func:`use_wal`): readers never block the
  writer, and two processes can record into one file at once.
- Each connection waits ``busy_timeout`` for another process's transaction
  (``daskflow.store-retry``: how long a write may wait before its batch goes
  to the journal) and writes with ``synchronous=NORMAL``; write transactions
  begin ``IMMEDIATE``, so two writers take turns instead of failing on a lock
  upgrade, and reads begin a plain deferred transaction.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["BUSY_TIMEOUT", "connect", "sqlite_file", "sqlite_pragmas", "to_url", "use_wal"]

#: How long a SQLite writer waits for another process's transaction when no
#: ``daskflow.store-retry`` is configured, in seconds.
BUSY_TIMEOUT = 10.0

# sqlite:///relative.db, sqlite:////absolute.db, sqlite+pysqlite:///...: the database part
_SQLITE_URL = re.compile(r"^sqlite(\+\w+)?:///(?P<database>.*)$", re.DOTALL)


def to_url(target: str) -> str:
    """The SQLAlchemy URL for a store: a path becomes a SQLite URL; ``~`` expanded.

    Examples
    --------
    >>> to_url("/tmp/runs.db")
    'sqlite:////tmp/runs.db'
    >>> to_url("postgresql+psycopg://me@db/runs")
    'postgresql+psycopg://me@db/runs'
    """
    if "://" not in target:
        return "sqlite:///" + os.path.abspath(os.path.expanduser(target))
    found = _SQLITE_URL.match(target)
    if found and found["database"].startswith("~"):
        prefix = target[: found.start("database")]
        return prefix + os.path.expanduser(found["database"])
    return target


def sqlite_file(url: str) -> str | None:
    """The file of a plain ``sqlite:///file`` URL; None for anything else.

    Anything else (another database, an in-memory SQLite database, a URL
    with driver options after ``?``) goes through SQLAlchemy alone.

    Examples
    --------
    >>> sqlite_file("sqlite:////tmp/runs.db")
    '/tmp/runs.db'
    >>> sqlite_file("sqlite:///:memory:") is None
    True
    """
    found = _SQLITE_URL.match(url)
    if found is None or found.group(1) not in (None, "+pysqlite"):
        return None
    database = found["database"]
    if not database or database == ":memory:" or "?" in database:
        return None
    return database


def connect(path: str, busy_timeout: float) -> sqlite3.Connection:
    """A connection to the SQLite file ``path`` for the store's own statements.

    In autocommit mode (the store begins its transactions itself), usable
    from any thread (the store serialises its use with a lock).
    """
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=0)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        conn.execute("PRAGMA synchronous = NORMAL")
    except BaseException:
        conn.close()
        raise
    return conn


def use_wal(conn: sqlite3.Connection) -> None:
    """Switch the SQLite file to WAL mode (once: the mode is kept in the file).

    Switching needs the file to itself for a moment, and SQLite does not
    wait for that with ``busy_timeout``: when another process holds it
    (two processes opening a new store at once), try again.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(0.01)


def table_names(conn: sqlite3.Connection) -> set[str]:
    """The names of the tables in the file (not SQLite's own)."""
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {name for (name,) in rows if not name.startswith("sqlite_")}


def sqlite_pragmas(engine: sa.Engine, busy_timeout: float) -> None:
    """Per-connection SQLite settings, and BEGIN IMMEDIATE for write transactions."""
    import sqlalchemy as sa

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        write = conn.get_execution_options().get("daskflow_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

"""What a SQLite run store needs beyond SQLAlchemy: its URL, WAL mode, pragmas.

- A store named by a path is a SQLite file (:func:`to_url`: ``~`` expanded,
  made absolute).
- The file runs in WAL mode (:func:`use_wal`): readers never block the
  writer, and two processes can record into one file at once.
- Each connection (:func:`sqlite_pragmas`) waits ``busy_timeout`` for another
  process's transaction (``daskflow.store-retry``: how long a write may wait
  before its batch goes to the journal) and writes with
  ``synchronous=NORMAL``; write transactions begin ``IMMEDIATE``, so two
  writers take turns instead of failing on a lock upgrade, and reads begin a
  plain deferred transaction.
"""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Any

import sqlalchemy as sa

__all__ = ["BUSY_TIMEOUT", "sqlite_pragmas", "to_url", "use_wal"]

#: How long a SQLite writer waits for another process's transaction when no
#: ``daskflow.store-retry`` is configured, in seconds.
BUSY_TIMEOUT = 10.0


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
    url = sa.make_url(target)
    if url.get_backend_name() == "sqlite" and url.database and url.database.startswith("~"):
        return url.set(database=os.path.expanduser(url.database)).render_as_string(False)
    return target


def use_wal(engine: sa.Engine) -> None:
    """Switch the SQLite file to WAL mode (once: the mode is kept in the file).

    Switching needs the file to itself for a moment, and SQLite does not
    wait for that with ``busy_timeout``: when another process holds it
    (two processes opening a new store at once), try again.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT
    while True:
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        finally:
            raw.close()
        time.sleep(0.01)


def sqlite_pragmas(engine: sa.Engine, busy_timeout: float) -> None:
    """Per-connection SQLite settings, and BEGIN IMMEDIATE for write transactions."""

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

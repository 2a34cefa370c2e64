"""The SQL run store: SQLite by default, any SQLAlchemy URL (PostgreSQL for a team).

Design, in the order things happen:

- **Opening** reads before it writes. :func:`~daskflow.store.versions.recognise`
  tells an empty database from a daskflow store from anything else; a file
  that is not a database, a database of something else, or a store of a newer
  daskflow raises :class:`~daskflow.errors.StoreError` and is left untouched.
  An empty database gets its tables under a write lock (``BEGIN IMMEDIATE`` on
  SQLite, an advisory lock on PostgreSQL), so two processes opening a new
  store at once create it once.
- **Journals.** Then it replays the batches that processes could not write
  into it earlier (:mod:`daskflow.store.journal`), before it looks for
  crashed runs: a run whose last batches were journaled is not taken for dead.
- **Crashed runs.** On open, flow runs still SCHEDULED, PENDING, RUNNING or
  RETRYING whose heartbeat (or creation, when they never sent one) is older
  than ``daskflow.heartbeat-timeout`` (60 s) are marked CRASHED, with
  their unfinished task runs: their process (a flow's, or the ``serve`` one
  that holds a SCHEDULED run) died without saying so. A deployment's run
  request that no serving process has claimed is no one's yet: it stays
  SCHEDULED (:mod:`daskflow.store.deployments`).
- **Writing** a batch of events is one transaction of a few bulk statements,
  whatever the batch holds: one ``executemany`` INSERT per kind of row (artifacts:
  :mod:`daskflow.store.artifacts`), a
  SELECT (per 500 runs) of the status of runs that earlier batches created,
  and one ``executemany`` UPDATE of the statuses that changed. The SELECT is
  skipped for the task runs this store object wrote and that are not
  finished: it keeps their statuses (only the flow's process changes them),
  so the batches of a running flow only write. New statuses
  come from :func:`daskflow.store.fold.fold`, shared with the in-memory store,
  which orders a run's transitions by time: a late one never moves it back.
  The statements are SQL text run on the driver (:mod:`daskflow.store.driver`).
- **SQLite** runs in WAL mode, waits ``daskflow.store-retry`` for another
  process's lock, and begins write transactions ``IMMEDIATE``
  (:mod:`daskflow.store.sqlite`). A new file (and its WAL files, which SQLite
  creates with the file's mode) is readable by its owner only. A SQLite file
  is opened and written through :mod:`sqlite3` itself: recording runs never
  imports SQLAlchemy.
- **Reading** (:mod:`daskflow.store.sql_reading`): the reads a flow run makes
  are SQL text on the driver too; the others (:mod:`daskflow.store.sql_reads`),
  creating or upgrading the tables, and deployments use SQLAlchemy's engine,
  made when first needed.

All methods are thread-safe: SQLAlchemy's pool gives each thread its own
connection, and the writes (and SQLite's own connection) of one store object
are serialised by a lock.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from daskflow.errors import StoreError
from daskflow.observers.events import Event, FlowRunCreated, StateChanged
from daskflow.owner_only import new_private_file
from daskflow.states import StateType

from . import artifacts as artifact_sql
from .base import (
    FlowRunRow,
    error_reason,
)
from .columns import (
    FLOW_COLUMNS,
    LOG_COLUMNS,
    TASK_COLUMNS,
    TRANSITION_COLUMNS,
    flow_tuple,
    log_tuple,
    status_tuple,
    task_tuple,
    transition_tuple,
)
from .driver import Driver, Statements, is_database_error
from .driver import logger as sql_logger  # COMMIT, beside the statements
from .fold import CRASH_MESSAGE, STATUS_COLUMNS, RunStatus, fold, plan
from .graph import EDGE_COLUMNS, edge_rows
from .implied import implied_transitions, implies_history, transition_values
from .resources import SAMPLE_COLUMNS, sample_rows
from .sql_reading import SQLReading
from .sqlite import BUSY_TIMEOUT, connect, sqlite_file, table_names, to_url, use_wal
from .versions import Found, recognise

if TYPE_CHECKING:
    import sqlalchemy as sa

    from .sql_reads import SQLReads

__all__ = ["SQLStore", "to_url"]

logger = logging.getLogger("daskflow.store")

#: At most this many ids in one ``IN (...)``.
_CHUNK = 500
#: At most this many unfinished task runs' statuses are kept in memory (see ``_remember``).
_UNFINISHED_KEPT = 20_000
_NOTHING_KNOWN: Mapping[str, RunStatus] = MappingProxyType({})
_NEW = RunStatus()  # the status of a run just created (immutable: one for all)
_FINAL = tuple(s.value for s in StateType if s.is_final)
# a SCHEDULED run waits in a live serve process, which keeps its heartbeat
_ALIVE = (
    StateType.SCHEDULED.value,
    StateType.PENDING.value,
    StateType.RUNNING.value,
    StateType.RETRYING.value,
)
_STATUS_READ = ("id", *STATUS_COLUMNS)
# a task run's status, then whether its row implies its transitions, and what else they say
_TASK_STATUS_READ = (*_STATUS_READ, "transitions_implied", "flow_run_id", "created")
_MARK = len(_STATUS_READ)  # where "transitions_implied" is in a row of _TASK_STATUS_READ


class SQLStore(SQLReading):
    """A run store in a SQL database.

    Parameters
    ----------
    url
        A SQLite file path (``~`` expanded, parent folders created), or any
        SQLAlchemy URL: ``sqlite:///path``, ``postgresql+psycopg://user@host/db``.
    heartbeat_timeout
        Seconds without a heartbeat after which a SCHEDULED, PENDING, RUNNING or
        RETRYING flow run is marked CRASHED when a store is opened; None:
        config ``daskflow.heartbeat-timeout``.
    replay
        Replay the journals of this store (batches earlier processes could not
        write) when it is opened.

    Attributes
    ----------
    url : str
        The SQLAlchemy URL (a path made absolute, ``~`` expanded).
    where : str
        What error messages call the store: the SQLite file, or the URL
        without its password.

    Raises
    ------
    StoreError
        The database is not a daskflow store, is corrupt, or was written by a
        newer daskflow. Nothing was written to it.

    Examples
    --------
    >>> store = SQLStore("~/.daskflow/daskflow.db")  # doctest: +SKIP
    >>> [row.name for row in store.list_flow_runs(limit=5)]  # doctest: +SKIP
    ['etl-2024-01-02', 'etl-2024-01-01']
    """

    def __init__(
        self, url: str, *, heartbeat_timeout: float | None = None, replay: bool = True
    ) -> None:
        from daskflow import config

        self.url = to_url(url)
        if heartbeat_timeout is None:
            heartbeat_timeout = config.get_seconds("heartbeat-timeout")
        self.heartbeat_timeout = heartbeat_timeout
        self._busy_timeout = config.get_seconds("store-retry") or BUSY_TIMEOUT
        self._lock = threading.Lock()  # writes, and every use of the direct connection
        self._engine_lock = threading.Lock()
        self._engine: sa.Engine | None = None
        self._reads: SQLReads | None = None
        self._direct: sqlite3.Connection | None = None
        self._unfinished: dict[str, RunStatus] = {}  # task run id -> status written
        self._file = sqlite_file(self.url)
        self._sqlite = self.url.split(":", 1)[0].split("+", 1)[0] == "sqlite"
        if self._file is not None:
            self.where = self._file
            self._sql = Statements("?", lock_rows=False)
        else:
            self._sql = self._statements_of_engine()
        try:
            self._open()
            if replay:
                from .journal import replay as replay_journals

                replay_journals(self)
            try:
                self.mark_crashed()
            except Exception as exc:  # readable, not writable now: runs go on
                if not is_database_error(exc):
                    raise
                why = error_reason(exc)
                logger.warning("daskflow: could not mark crashed runs in %s (%s)", self.where, why)
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"SQLStore({self.where!r})"

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine (reads, deployments, tools and tests), made on first use."""
        with self._engine_lock:
            if self._engine is None:
                import sqlalchemy as sa

                from .sqlite import sqlite_pragmas

                if self._sqlite:
                    self._engine = sa.create_engine(self.url)
                    sqlite_pragmas(self._engine, self._busy_timeout)
                else:  # a server that restarted: pooled connections are tested before use
                    self._engine = sa.create_engine(self.url, pool_pre_ping=True)
            return self._engine

    @property
    def reads(self) -> SQLReads:
        """The read queries (:mod:`daskflow.store.sql_reads`), made on the first read."""
        if self._reads is None:
            from .sql_reads import SQLReads

            self._reads = SQLReads(self.engine)
        return self._reads

    def _statements_of_engine(self) -> Statements:
        """Statements for a database reached through SQLAlchemy (sets :attr:`where`)."""
        import sqlalchemy as sa

        sa_url = sa.make_url(self.url)
        if self._sqlite and sa_url.database and sa_url.database != ":memory:":
            self.where = sa_url.database
            self._file_created(sa_url.database)
        else:
            self.where = sa_url.render_as_string(hide_password=True)
        paramstyle = self.engine.dialect.paramstyle
        if paramstyle not in ("qmark", "format", "pyformat"):
            raise StoreError(
                self.where,
                f"its driver's parameter style {paramstyle!r} is not one "
                "daskflow writes (qmark, format or pyformat)",
            )
        placeholder = "?" if paramstyle == "qmark" else "%s"
        return Statements(placeholder, lock_rows=not self._sqlite)

    def _file_created(self, path: str) -> None:
        try:
            new_private_file(path)  # owner-only, and so are its WAL files
        except OSError as exc:
            raise StoreError(self.where, f"cannot be created ({exc.strerror})") from exc

    # -- opening -----------------------------------------------------------------
    def _open(self) -> None:
        if self._file is not None:
            self._file_created(self._file)
            try:
                self._direct = connect(self._file, self._busy_timeout)
                found = recognise(
                    table_names(self._direct),
                    self._stored_version,
                    sqlite=True,
                    where=self.where,
                )
            except sqlite3.DatabaseError as exc:  # a file it may not open, or not a database
                unreadable = not isinstance(exc, sqlite3.OperationalError)
                what = "not a daskflow database" if unreadable else "cannot be opened"
                raise StoreError(self.where, f"{what} ({error_reason(exc)})") from exc
            use_wal(self._direct)  # only now that the file is known to be ours (or empty)
        else:
            found = self._inspect_with_engine()
        if found != "current":  # tables to create or columns to add: SQLAlchemy's metadata
            import sqlalchemy as sa

            from .schema import create_schema, inspect_schema, upgrade_schema

            with self._lock, self._write() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('daskflow'))"))
                again = inspect_schema(conn, self.where)  # another process may have done it
                if again == "empty":
                    create_schema(conn)
                elif again == "older":
                    upgrade_schema(conn)

    def _stored_version(self) -> str | None:
        assert self._direct is not None
        row = self._direct.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return None if row is None else str(row[0])

    def _inspect_with_engine(self) -> Found:
        import sqlalchemy as sa

        from .schema import inspect_schema

        try:
            with self.engine.connect() as conn:
                found = inspect_schema(conn, self.where)
        except sa.exc.DBAPIError as exc:  # SQLite reads the header as it connects
            # SQLite: "file is not a database" is a DatabaseError; a file it may not open
            # (a read-only folder, which WAL mode needs to write) an OperationalError
            unreadable = self._sqlite and not isinstance(exc, sa.exc.OperationalError)
            what = "not a daskflow database" if unreadable else "cannot be opened"
            raise StoreError(self.where, f"{what} ({error_reason(exc)})") from exc
        if self._sqlite:
            raw = self.engine.raw_connection()
            try:
                use_wal(raw.driver_connection)  # type: ignore[arg-type]
            finally:
                raw.close()
        return found

    @contextlib.contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        """One SQLAlchemy write transaction (``BEGIN IMMEDIATE`` on SQLite)."""
        with self.engine.connect() as conn:
            conn.execution_options(daskflow_write=True)
            with conn.begin():
                yield conn

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Driver]:
        """One write transaction of SQL text on the driver; hold :attr:`_lock` around it."""
        direct = self._direct
        if direct is None:
            with self._write() as conn:
                yield Driver(conn)
            sql_logger.debug("COMMIT")
            return
        direct.execute("BEGIN IMMEDIATE")
        try:
            yield Driver(direct)
            direct.execute("COMMIT")
            sql_logger.debug("COMMIT")
        except BaseException:
            if direct.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    direct.execute("ROLLBACK")
            raise

    @contextlib.contextmanager
    def _reading(self) -> Iterator[Driver]:
        """A connection for SQL text reads, outside any write."""
        if self._direct is not None:
            with self._lock:
                yield Driver(self._direct)
            return
        with self.engine.connect() as conn:
            yield Driver(conn)

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of one SQL text query, outside any write."""
        with self._reading() as conn:
            return conn.rows(sql, params)

    def _records(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """:meth:`_query`, each row with its columns as attributes."""
        with self._reading() as conn:
            return conn.records(sql, params)

    def mark_crashed(self, now: float | None = None) -> list[str]:
        """Mark flow runs whose process died CRASHED, with their unfinished task runs.

        A flow run is dead when it is SCHEDULED, PENDING, RUNNING or RETRYING and its last
        heartbeat (or its creation, without one) is older than
        ``heartbeat_timeout``. Called when the store is opened.

        Returns
        -------
        list of str
            The ids of the flow runs marked CRASHED.
        """
        now = time.time() if now is None else now
        sql = self._sql
        stale = (
            f"SELECT id FROM flow_runs WHERE state IN ({sql.marks(len(_ALIVE))})"
            f" AND COALESCE(heartbeat, created) < {sql.placeholder}"
            # a run request no serving process holds yet
            " AND id NOT IN (SELECT flow_run_id FROM deployment_runs WHERE claimed IS NULL)"
        )
        stale_params = (*_ALIVE, now - self.heartbeat_timeout)
        if not self._query(stale + " LIMIT 1", stale_params):  # usually none: no write lock
            return []
        with self._lock, self._transaction() as conn:
            locked = " FOR UPDATE" if sql.lock_rows else ""
            ids = [row[0] for row in conn.rows(stale + locked, stale_params)]
            for chunk in _chunks(ids):
                self._record_crash(conn, chunk, now)
        return ids

    def _record_crash(self, conn: Driver, flow_run_ids: list[str], now: float) -> None:
        """Record CRASHED for these flow runs (when alive) and their unfinished task runs."""
        mark, ids = self._sql.placeholder, self._sql.marks(len(flow_run_ids))
        flows = f"id IN ({ids}) AND state IN ({self._sql.marks(len(_ALIVE))})"
        tasks = f"flow_run_id IN ({ids}) AND state NOT IN ({self._sql.marks(len(_FINAL))})"
        crashed = (StateType.CRASHED.value, now)
        for table, run_ids, where, states in (
            ("flow_runs", "id, NULL", flows, _ALIVE),
            ("task_runs", "flow_run_id, id", tasks, _FINAL),
        ):
            where_params = (*flow_run_ids, *states)
            conn.run(
                "INSERT INTO transitions (flow_run_id, task_run_id, state, timestamp, attempt,"
                f" worker, message, details) SELECT {run_ids}, {mark}, {mark}, attempts, worker,"
                f" {mark}, '{{}}' FROM {table} WHERE {where}",
                (*crashed, CRASH_MESSAGE, *where_params),
            )
            conn.run(
                f"UPDATE {table} SET state = {mark}, state_time = {mark}, state_message = {mark},"
                f" end_time = {mark} WHERE {where}",
                (*crashed, CRASH_MESSAGE, now, *where_params),
            )

    # -- writing -----------------------------------------------------------------
    def write(self, events: Sequence[Event], *, replay_id: str | None = None) -> None:
        """Record a batch of events in one transaction (see the module docstring).

        ``replay_id`` names a journaled batch (:mod:`daskflow.store.journal`):
        it is recorded with the batch, and a batch of an id recorded before is
        skipped, so replaying a journal twice writes it once. A journaled batch
        may carry the creation of a flow run the store holds already (the
        journal carries it for a store restored from before the run): it is
        left out.
        """
        if not events:
            return
        if replay_id is not None:
            events = self._without_known_flow_runs(events)
        batch = plan(events)
        new_flows = [
            flow_tuple(e, fold(RunStatus(), batch.flow_changes.pop(e.flow_run_id, ())))
            for e in batch.flow_runs.values()
        ]
        changes_of = batch.task_changes.pop
        created: dict[str, RunStatus] = {}
        implied: set[str] = set()  # new runs whose row holds their history (store.implied)
        for run_id, event in batch.task_runs.items():
            own = changes_of(run_id, ())
            created[run_id] = fold(_NEW, own)
            if implies_history(event, own):
                implied.add(run_id)
        new_tasks = [
            task_tuple(e, created[run_id], run_id in implied)
            for run_id, e in batch.task_runs.items()
        ]
        changes = [  # before taking the lock
            transition_tuple(c) for c in batch.changes if c.task_run_id not in implied
        ]
        logs = [log_tuple(e) for e in batch.logs]
        edges, samples = edge_rows(batch.edges), sample_rows(batch.samples)
        sql = self._sql
        with self._lock:
            with self._transaction() as conn:
                if replay_id is not None and not self._first_replay(conn, replay_id):
                    return
                conn.many(sql.insert("flow_runs", FLOW_COLUMNS), new_flows)
                conn.many(sql.insert("task_runs", TASK_COLUMNS), new_tasks)
                self._update_statuses(conn, "flow_runs", batch.flow_changes)
                folded = self._update_statuses(
                    conn, "task_runs", batch.task_changes, known=self._unfinished
                )
                conn.many(sql.insert("transitions", TRANSITION_COLUMNS), changes)
                conn.many(sql.insert("logs", LOG_COLUMNS), logs)
                if batch.artifacts:
                    artifact_sql.write(conn, sql, batch.artifacts)
                conn.many(sql.insert("task_edges", EDGE_COLUMNS), edges)  # store.graph
                conn.many(sql.insert("resource_samples", SAMPLE_COLUMNS), samples)
            self._remember({**created, **folded})  # committed: now true of the database

    def _without_known_flow_runs(self, events: Sequence[Event]) -> Sequence[Event]:
        created = [e.flow_run_id for e in events if isinstance(e, FlowRunCreated)]
        if not created:
            return events
        known: set[str] = set()
        for chunk in _chunks(created):
            query = self._sql.select_in("flow_runs", ("id",), len(chunk), lock=False)
            known.update(row[0] for row in self._query(query, chunk))
        return [e for e in events if not (isinstance(e, FlowRunCreated) and e.flow_run_id in known)]

    def _first_replay(self, conn: Driver, replay_id: str) -> bool:
        """Record ``replay_id`` as written; False if it was written before."""
        if conn.rows(self._sql.select_in("replayed", ("id",), 1), (replay_id,)):
            return False
        conn.run(self._sql.insert("replayed", ("id", "replayed")), (replay_id, time.time()))
        return True

    def _update_statuses(
        self,
        conn: Driver,
        table: str,
        changes: dict[str, list[StateChanged]],
        known: Mapping[str, RunStatus] = _NOTHING_KNOWN,
    ) -> dict[str, RunStatus]:
        """Fold ``changes`` into the stored statuses of runs of earlier batches.

        Statuses found in ``known`` are not read back. Returns the new status
        of every run folded.
        """
        before = {run_id: known[run_id] for run_id in changes if run_id in known}
        unknown = [run_id for run_id in changes if run_id not in before]
        tasks = table == "task_runs"
        marked: dict[str, tuple[str, float]] = {}  # task runs whose row implies their transitions
        for chunk in _chunks(unknown):
            query = self._sql.select_in(
                table, _TASK_STATUS_READ if tasks else _STATUS_READ, len(chunk)
            )
            for row in conn.rows(query, chunk):
                before[row[0]] = RunStatus(StateType(row[1]), *row[2:_MARK])
                if tasks and row[_MARK]:
                    marked[row[0]] = (row[_MARK + 1], row[_MARK + 2])  # flow run, created
        if marked:  # before this batch's own transitions, which came after them
            implied = [
                t
                for run_id, (flow_run_id, created) in marked.items()
                for t in implied_transitions(flow_run_id, run_id, created, before[run_id])
            ]
            conn.many(
                self._sql.insert("transitions", TRANSITION_COLUMNS), map(transition_values, implied)
            )
        # runs never created (not recorded) keep only their transitions
        after = {run_id: fold(status, changes[run_id]) for run_id, status in before.items()}
        # a task run's row no longer implies its transitions once they are rows
        cleared = (None,) if tasks else ()
        rows = [
            (*status_tuple(status), *cleared, run_id)
            for run_id, status in after.items()
            if status != before[run_id] or run_id in marked
        ]
        columns = (*STATUS_COLUMNS, "transitions_implied") if tasks else STATUS_COLUMNS
        conn.many(self._sql.update(table, columns), rows)
        return after

    def _remember(self, statuses: dict[str, RunStatus]) -> None:
        """Keep the statuses of this store's unfinished task runs for the next batches.

        Only this process changes a task run's status while its flow run is
        alive, so the next batch folds onto the status it wrote instead of
        reading it back: a batch of a running flow needs no SELECT. Finished
        runs are forgotten, and at most :data:`_UNFINISHED_KEPT` are kept (the
        others are read back).
        """
        unfinished = self._unfinished
        for run_id, status in statuses.items():
            if status.state.is_final:
                unfinished.pop(run_id, None)
            elif run_id in unfinished or len(unfinished) < _UNFINISHED_KEPT:
                unfinished[run_id] = status

    def heartbeat(self, flow_run_ids: Sequence[str], now: float) -> None:
        """Mark these flow runs alive at ``now`` (the engine calls it every 10 s)."""
        mark = self._sql.placeholder
        with self._lock, self._transaction() as conn:
            for chunk in _chunks(list(flow_run_ids)):
                ids = self._sql.marks(len(chunk))
                conn.run(
                    f"UPDATE flow_runs SET heartbeat = {mark} WHERE id IN ({ids})", (now, *chunk)
                )

    def request_cancel(self, flow_run_id: str, now: float) -> FlowRunRow | None:
        """Ask for a flow run to be cancelled (see :meth:`RunStore.request_cancel`)."""
        row = self.get_flow_run(flow_run_id)
        if row is None:
            return None
        mark, final = self._sql.placeholder, self._sql.marks(len(_FINAL))
        with self._lock, self._transaction() as conn:
            conn.run(
                f"UPDATE flow_runs SET cancel_requested = {mark} WHERE id = {mark}"
                f" AND cancel_requested IS NULL AND state NOT IN ({final})",
                (now, row.id, *_FINAL),
            )
        return self.get_flow_run(row.id)

    def cancel_requests(self, flow_run_ids: Sequence[str]) -> list[str]:
        """Which of these flow runs were asked to cancel (primary-key lookups)."""
        found: list[str] = []
        for chunk in _chunks(list(flow_run_ids)):
            query = self._sql.select_in(
                "flow_runs", ("id",), len(chunk), lock=False, where="cancel_requested IS NOT NULL"
            )
            found.extend(row[0] for row in self._query(query, chunk))
        return found

    def close(self) -> None:
        """Close every connection (SQLite folds its WAL file back in)."""
        with self._lock:
            if self._direct is not None:
                self._direct.close()
                self._direct = None
        if self._engine is not None:
            self._engine.dispose()


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]

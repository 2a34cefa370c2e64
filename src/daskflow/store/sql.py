"""The SQL run store: SQLite by default, any SQLAlchemy URL (PostgreSQL for a team).

Design, in the order things happen:

- **Opening** reads before it writes. :func:`~daskflow.store.schema.inspect_schema`
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
- **SQLite** runs in WAL mode, waits ``daskflow.store-retry`` for another
  process's lock, and begins write transactions ``IMMEDIATE``
  (:mod:`daskflow.store.sqlite`). A new file (and its WAL files, which SQLite
  creates with the file's mode) is readable by its owner only.

All methods are thread-safe: SQLAlchemy's pool gives each thread its own
connection, and writes of one store object are serialised by a lock.
"""

from __future__ import annotations

import contextlib
import logging
import operator
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa

from daskflow.errors import StoreError
from daskflow.observers.events import Event, FlowRunCreated, StateChanged
from daskflow.owner_only import new_private_file
from daskflow.states import StateType

from . import artifacts as artifact_sql
from .base import (
    ArtifactRow,
    FlowRunRow,
    LogRow,
    TaskRunBin,
    TaskRunRow,
    TransitionRow,
    merge_bins,
)
from .columns import (
    TASK_COLUMNS,
    TRANSITION_COLUMNS,
    flow_row,
    flow_values,
    log_row,
    log_values,
    status_values,
    task_row,
    task_tuple,
    transition_row,
    transition_tuple,
)
from .deployments import unclaimed
from .fold import CRASH_MESSAGE, STATUS_COLUMNS, RunStatus, fold, plan
from .graph import edge_rows, edges_query, insert_edges
from .resources import ResourceBin, bins_query, insert_samples, merge_resource_bins, sample_rows
from .schema import (
    create_schema,
    error_reason,
    flow_runs,
    inspect_schema,
    logs,
    replayed,
    task_runs,
    transitions,
    upgrade_schema,
)
from .sqlite import BUSY_TIMEOUT, sqlite_pragmas, to_url, use_wal

__all__ = ["SQLStore", "to_url"]

logger = logging.getLogger("daskflow.store")

#: At most this many ids in one ``IN (...)``.
_CHUNK = 500
#: At most this many unfinished task runs' statuses are kept in memory (see ``_remember``).
_UNFINISHED_KEPT = 20_000
_NOTHING_KNOWN: Mapping[str, RunStatus] = MappingProxyType({})
_NEW = RunStatus()  # the status of a run just created (immutable: one for all)
_FINAL = [s.value for s in StateType if s.is_final]
# a SCHEDULED run waits in a live serve process, which keeps its heartbeat
_ALIVE = [
    StateType.SCHEDULED.value,
    StateType.PENDING.value,
    StateType.RUNNING.value,
    StateType.RETRYING.value,
]


class SQLStore:
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
        sa_url = sa.make_url(self.url)
        self._sqlite = sa_url.get_backend_name() == "sqlite"
        if self._sqlite and sa_url.database and sa_url.database != ":memory:":
            self.where = sa_url.database
            try:
                new_private_file(sa_url.database)  # owner-only, and so are its WAL files
            except OSError as exc:
                raise StoreError(self.where, f"cannot be created ({exc.strerror})") from exc
        else:
            self.where = sa_url.render_as_string(hide_password=True)
        if self._sqlite:
            self._engine = sa.create_engine(sa_url)
            sqlite_pragmas(self._engine, config.get_seconds("store-retry") or BUSY_TIMEOUT)
        else:  # a server that restarted: pooled connections are tested before use
            self._engine = sa.create_engine(sa_url, pool_pre_ping=True)
        self._lock = threading.Lock()
        self._updates = {table: _status_update(table) for table in (flow_runs, task_runs)}
        self._inserts = {table: table.insert() for table in (flow_runs, task_runs, logs)}
        self._inserts[transitions] = transitions.insert()
        self._compiled: dict[Any, tuple[str, Callable[[dict[str, Any]], Any]]] = {}
        self._compiled_tuples: dict[sa.Table, tuple[str, Callable[[Any], Any] | None]] = {}
        self._unfinished: dict[str, RunStatus] = {}  # task run id -> status written
        try:
            self._open()
            if replay:
                from .journal import replay as replay_journals

                replay_journals(self)
            try:
                self.mark_crashed()
            except sa.exc.DBAPIError as exc:  # readable, not writable now: runs go on
                why = error_reason(exc)
                logger.warning("daskflow: could not mark crashed runs in %s (%s)", self.where, why)
        except BaseException:
            self._engine.dispose()
            raise

    def __repr__(self) -> str:
        return f"SQLStore({self.where!r})"

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine (for tools and tests that need SQL)."""
        return self._engine

    # -- opening -----------------------------------------------------------------
    def _open(self) -> None:
        try:
            with self._engine.connect() as conn:
                found = inspect_schema(conn, self.where)
        except sa.exc.DBAPIError as exc:  # SQLite reads the header as it connects
            # SQLite: "file is not a database" is a DatabaseError; a file it may not open
            # (a read-only folder, which WAL mode needs to write) an OperationalError
            unreadable = self._sqlite and not isinstance(exc, sa.exc.OperationalError)
            what = "not a daskflow database" if unreadable else "cannot be opened"
            raise StoreError(self.where, f"{what} ({error_reason(exc)})") from exc
        if self._sqlite:  # only now that the file is known to be ours (or empty)
            use_wal(self._engine)
        if found != "current":
            with self._write() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('daskflow'))"))
                again = inspect_schema(conn, self.where)  # another process may have done it
                if again == "empty":
                    create_schema(conn)
                elif again == "older":
                    upgrade_schema(conn)

    @contextlib.contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        """One write transaction (``BEGIN IMMEDIATE`` on SQLite)."""
        with self._engine.connect() as conn:
            conn.execution_options(daskflow_write=True)
            with conn.begin():
                yield conn

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
        fr, tr = flow_runs, task_runs
        last_sign = sa.func.coalesce(fr.c.heartbeat, fr.c.created)
        stale = sa.select(fr.c.id).where(
            fr.c.state.in_(_ALIVE),
            last_sign < now - self.heartbeat_timeout,
            fr.c.id.not_in(unclaimed()),  # a run request no serving process holds yet
        )
        with self._engine.connect() as conn:  # usually none: no write lock for that
            if conn.execute(stale.limit(1)).first() is None:
                return []
        with self._lock, self._write() as conn:
            ids = list(conn.execute(stale.with_for_update()).scalars())
            for chunk in _chunks(ids):
                flows = fr.c.id.in_(chunk) & fr.c.state.in_(_ALIVE)
                tasks = tr.c.flow_run_id.in_(chunk) & tr.c.state.not_in(_FINAL)
                self._record_crash(conn, fr.c.id, sa.null(), fr, flows, now)
                self._record_crash(conn, tr.c.flow_run_id, tr.c.id, tr, tasks, now)
                for table, where in ((fr, flows), (tr, tasks)):
                    conn.execute(
                        sa.update(table)
                        .where(where)
                        .values(
                            state=StateType.CRASHED.value,
                            state_time=now,
                            state_message=CRASH_MESSAGE,
                            end_time=now,
                        )
                    )
        return ids

    @staticmethod
    def _record_crash(
        conn: sa.Connection,
        flow_run_id: Any,
        task_run_id: Any,
        table: sa.Table,
        where: Any,
        now: float,
    ) -> None:
        rows = sa.select(
            flow_run_id,
            task_run_id,
            sa.literal(StateType.CRASHED.value),
            sa.literal(now, sa.Double()),
            table.c.attempts,
            table.c.worker,
            sa.literal(CRASH_MESSAGE),
            sa.literal("{}"),
        ).where(where)
        columns = ["flow_run_id", "task_run_id", "state", "timestamp", "attempt", "worker"]
        conn.execute(transitions.insert().from_select([*columns, "message", "details"], rows))

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
            flow_values(e, fold(RunStatus(), batch.flow_changes.pop(e.flow_run_id, ())))
            for e in batch.flow_runs.values()
        ]
        changes_of = batch.task_changes.pop
        created = {run_id: fold(_NEW, changes_of(run_id, ())) for run_id in batch.task_runs}
        new_tasks = [task_tuple(e, created[e.task_run_id]) for e in batch.task_runs.values()]
        changes = [transition_tuple(c) for c in batch.changes]  # before taking the lock
        edges, samples = edge_rows(batch.edges), sample_rows(batch.samples)
        with self._lock:
            with self._write() as conn:
                if replay_id is not None and not self._first_replay(conn, replay_id):
                    return
                self._executemany(conn, self._inserts[flow_runs], new_flows)
                self._insert_tuples(conn, task_runs, TASK_COLUMNS, new_tasks)
                self._update_statuses(conn, flow_runs, batch.flow_changes)
                folded = self._update_statuses(
                    conn, task_runs, batch.task_changes, known=self._unfinished
                )
                self._insert_tuples(conn, transitions, TRANSITION_COLUMNS, changes)
                self._executemany(conn, self._inserts[logs], [log_values(e) for e in batch.logs])
                if batch.artifacts:
                    artifact_sql.write(conn, batch.artifacts, self._executemany)
                self._executemany(conn, insert_edges(), edges)  # store.graph
                self._executemany(conn, insert_samples(), samples)  # store.resources
            self._remember({**created, **folded})  # committed: now true of the database

    def _without_known_flow_runs(self, events: Sequence[Event]) -> Sequence[Event]:
        created = [e.flow_run_id for e in events if isinstance(e, FlowRunCreated)]
        if not created:
            return events
        query = sa.select(flow_runs.c.id).where(flow_runs.c.id.in_(created))
        known = {row[0] for row in self._read(query)}
        return [e for e in events if not (isinstance(e, FlowRunCreated) and e.flow_run_id in known)]

    @staticmethod
    def _first_replay(conn: sa.Connection, replay_id: str) -> bool:
        """Record ``replay_id`` as written; False if it was written before."""
        seen = sa.select(replayed.c.id).where(replayed.c.id == replay_id).with_for_update()
        if conn.execute(seen).first() is not None:
            return False
        conn.execute(sa.insert(replayed).values(id=replay_id, replayed=time.time()))
        return True

    def _update_statuses(
        self,
        conn: sa.Connection,
        table: sa.Table,
        changes: dict[str, list[StateChanged]],
        known: Mapping[str, RunStatus] = _NOTHING_KNOWN,
    ) -> dict[str, RunStatus]:
        """Fold ``changes`` into the stored statuses of runs of earlier batches.

        Statuses found in ``known`` are not read back. Returns the new status
        of every run folded.
        """
        before = {run_id: known[run_id] for run_id in changes if run_id in known}
        unknown = [run_id for run_id in changes if run_id not in before]
        columns = [table.c[name] for name in STATUS_COLUMNS]
        for chunk in _chunks(unknown):
            query = sa.select(table.c.id, *columns).where(table.c.id.in_(chunk))
            for row in conn.execute(query.with_for_update()):
                before[row[0]] = RunStatus(StateType(row[1]), *row[2:])
        # runs never created (not recorded) keep only their transitions
        after = {run_id: fold(status, changes[run_id]) for run_id, status in before.items()}
        params = [
            {"b_id": run_id, **status_values(status, prefix="b_")}
            for run_id, status in after.items()
            if status != before[run_id]
        ]
        self._executemany(conn, self._updates[table], params)
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

    def _executemany(self, conn: sa.Connection, statement: Any, rows: list[dict[str, Any]]) -> None:
        """Run ``statement`` once per row, as one ``executemany``.

        On SQLite the statement is compiled once per store and its rows go
        straight to the driver as tuples: SQLAlchemy's per-row parameter
        handling would cost more than SQLite's own work (our column types
        need no conversion). Other databases take SQLAlchemy's path, which
        also batches INSERTs into multi-row statements where the driver can.
        """
        if not rows:
            return
        if not self._sqlite:
            conn.execute(statement, rows)
            return
        compiled = self._compiled.get(statement)
        if compiled is None:
            done = statement.compile(dialect=conn.dialect, column_keys=list(rows[0]))
            keys = done.positiontup or ()
            compiled = self._compiled[statement] = (done.string, operator.itemgetter(*keys))
        sql, values = compiled
        conn.exec_driver_sql(sql, [values(row) for row in rows])

    def _insert_tuples(
        self,
        conn: sa.Connection,
        table: sa.Table,
        columns: tuple[str, ...],
        rows: list[tuple[Any, ...]],
    ) -> None:
        """INSERT ``rows`` (values of ``columns``, in that order) as one ``executemany``.

        On SQLite the tuples go to the driver as they are (reordered in C if
        the compiled statement wants another order); no dict per row.
        """
        if not rows:
            return
        if not self._sqlite:
            params = [dict(zip(columns, row, strict=True)) for row in rows]
            conn.execute(self._inserts[table], params)
            return
        compiled = self._compiled_tuples.get(table)
        if compiled is None:
            done = self._inserts[table].compile(dialect=conn.dialect, column_keys=list(columns))
            order = [columns.index(name) for name in done.positiontup or ()]
            pick: Callable[[Any], Any] | None = None
            if order != list(range(len(columns))):
                pick = operator.itemgetter(*order)
            compiled = self._compiled_tuples[table] = (done.string, pick)
        sql, pick = compiled
        conn.exec_driver_sql(sql, rows if pick is None else [pick(row) for row in rows])

    def heartbeat(self, flow_run_ids: Sequence[str], now: float) -> None:
        """Mark these flow runs alive at ``now`` (the engine calls it every 10 s)."""
        with self._lock, self._write() as conn:
            for chunk in _chunks(list(flow_run_ids)):
                conn.execute(
                    sa.update(flow_runs).where(flow_runs.c.id.in_(chunk)).values(heartbeat=now)
                )

    def request_cancel(self, flow_run_id: str, now: float) -> FlowRunRow | None:
        """Ask for a flow run to be cancelled (see :meth:`RunStore.request_cancel`)."""
        row = self.get_flow_run(flow_run_id)
        if row is None:
            return None
        fr = flow_runs
        with self._lock, self._write() as conn:
            conn.execute(
                sa.update(fr)
                .where(
                    fr.c.id == row.id, fr.c.cancel_requested.is_(None), fr.c.state.not_in(_FINAL)
                )
                .values(cancel_requested=now)
            )
        return self.get_flow_run(row.id)

    def cancel_requests(self, flow_run_ids: Sequence[str]) -> list[str]:
        """Which of these flow runs were asked to cancel (primary-key lookups)."""
        fr = flow_runs
        found: list[str] = []
        for chunk in _chunks(list(flow_run_ids)):
            query = sa.select(fr.c.id).where(fr.c.id.in_(chunk), fr.c.cancel_requested.is_not(None))
            found.extend(r[0] for r in self._read(query))
        return found

    def last_scheduled_time(self, flow_name: str) -> float | None:
        """The latest slot of a started scheduled run of this flow (one indexed query)."""
        fr = flow_runs
        query = sa.select(sa.func.max(fr.c.scheduled_time)).where(
            fr.c.flow_name == flow_name, fr.c.start_time.is_not(None)
        )
        value = self._read(query)[0][0]
        return None if value is None else float(value)

    # -- reading -----------------------------------------------------------------
    def _read(self, query: sa.Executable) -> list[Any]:
        with self._engine.connect() as conn:
            return list(conn.execute(query))

    def list_flow_runs(
        self,
        *,
        flow: str | None = None,
        state: StateType | None = None,
        limit: int | None = 100,
    ) -> list[FlowRunRow]:
        """Flow runs, newest first, optionally of one flow name and/or state."""
        query = sa.select(flow_runs).order_by(flow_runs.c.created.desc(), flow_runs.c.id.desc())
        if flow is not None:
            query = query.where(flow_runs.c.flow_name == flow)
        if state is not None:
            query = query.where(flow_runs.c.state == StateType(state).value)
        return [flow_row(r) for r in self._read(query.limit(limit))]

    def get_flow_run(self, flow_run_id: str) -> FlowRunRow | None:
        """One flow run by id, or by a unique id prefix of 6 characters or more.

        A prefix that several runs share gives None, like an unknown id.
        """
        rows = self._read(sa.select(flow_runs).where(flow_runs.c.id == flow_run_id))
        if not rows and len(flow_run_id) >= 6:
            prefix = flow_runs.c.id.startswith(flow_run_id, autoescape=True)
            rows = self._read(sa.select(flow_runs).where(prefix).limit(2))
        return flow_row(rows[0]) if len(rows) == 1 else None

    def match_flow_runs(self, prefix: str, limit: int = 5) -> list[str]:
        """Ids of up to ``limit`` flow runs whose id starts with ``prefix`` (sorted)."""
        fr = flow_runs
        query = sa.select(fr.c.id).where(fr.c.id.startswith(prefix, autoescape=True))
        return [row[0] for row in self._read(query.order_by(fr.c.id).limit(limit))]

    def list_task_runs(
        self,
        flow_run_id: str,
        *,
        task: str | Sequence[str] | None = None,
        limit: int | None = None,
        states: Sequence[StateType] | None = None,
    ) -> list[TaskRunRow]:
        """Task runs of a flow run in creation order, optionally of task names or states.

        ``task`` is one task name or several. Naming the task names lets a
        SQL store find the runs of a few states among a million through its
        index of task runs by task name and state.
        """
        tr = task_runs
        query = sa.select(tr).where(tr.c.flow_run_id == flow_run_id)
        order: Any = tr.c.seq
        if isinstance(task, str):
            query = query.where(tr.c.task_name == task)
        elif task is not None:
            query = query.where(tr.c.task_name.in_(list(task)))
        if states is not None:
            query = query.where(tr.c.state.in_([StateType(s).value for s in states]))
            if task is not None:  # the few runs of these states, found by name and state,
                order = tr.c.seq + 0  # then sorted: not a walk in seq order through them all
        return [task_row(r) for r in self._read(query.order_by(order).limit(limit))]

    def recent_task_runs(
        self,
        *,
        task: str | None = None,
        states: Sequence[StateType] | None = None,
        limit: int | None = 50,
    ) -> list[TaskRunRow]:
        """Task runs of any flow run (or none: bare task runs), newest first."""
        query = sa.select(task_runs)
        if task is not None:
            query = query.where(task_runs.c.task_name == task)
        if states is not None:
            query = query.where(task_runs.c.state.in_([StateType(s).value for s in states]))
        query = query.order_by(task_runs.c.seq.desc()).limit(limit)
        return [task_row(r) for r in self._read(query)]

    def bin_task_runs(
        self, flow_run_id: str, *, start: float, width: float, bins: int
    ) -> list[TaskRunBin]:
        """Task runs counted by task name, state and start-time bin: one GROUP BY.

        The bin index is computed in SQL, so 100,000 task runs come back as a
        few hundred rows (about 80 ms on SQLite; 1,000,000 in about 0.5 s, read
        from the covering index of task runs by task name, state and start
        time). The group key leads with the bin: SQLite sorts an integer-led
        key faster than a name-led one.
        """
        if width <= 0 or bins < 1:
            raise ValueError(f"bin_task_runs needs width > 0 and bins >= 1, not {width}, {bins}")
        tr = task_runs
        offset = (tr.c.start_time - start) / width
        if self._engine.dialect.name == "sqlite":  # CAST truncates; merge_bins clamps below 0
            index: Any = sa.cast(offset, sa.Integer)
        else:  # PostgreSQL's CAST rounds
            index = sa.cast(sa.func.floor(offset), sa.Integer)
        index = index.label("bin")
        query = (
            sa.select(index, tr.c.task_name, tr.c.state, sa.func.count())
            .where(tr.c.flow_run_id == flow_run_id)
            .group_by(index, tr.c.task_name, tr.c.state)
        )
        groups = ((name, StateType(state), i, n) for i, name, state, n in self._read(query))
        return merge_bins(groups, bins)

    def count_task_runs(self, flow_run_id: str) -> dict[str, dict[StateType, int]]:
        """``{task_name: {state: count}}``: one GROUP BY on a covering index."""
        tr = task_runs
        query = (
            sa.select(tr.c.task_name, tr.c.state, sa.func.count())
            .where(tr.c.flow_run_id == flow_run_id)
            .group_by(tr.c.task_name, tr.c.state)
        )
        counts: dict[str, dict[StateType, int]] = {}
        for row in self._read(query):
            counts.setdefault(row[0], {})[StateType(row[1])] = row[2]
        return counts

    def list_transitions(
        self, flow_run_id: str, task_run_id: str | None = None
    ) -> list[TransitionRow]:
        """State changes of a flow run (``task_run_id`` None) or a task run, by time."""
        t = transitions
        run = t.c.task_run_id.is_(None) if task_run_id is None else t.c.task_run_id == task_run_id
        query = sa.select(t).where(t.c.flow_run_id == flow_run_id, run)
        return [transition_row(r) for r in self._read(query.order_by(t.c.timestamp, t.c.seq))]

    def list_logs(
        self,
        flow_run_id: str,
        *,
        task: str | None = None,
        limit: int | None = None,
        newest: bool = False,
    ) -> list[LogRow]:
        """Log records of a flow run and its task runs, oldest first.

        With ``limit``, the first ``limit`` records, or with ``newest`` the
        last ``limit`` (still in time order): the tail of a long run's log.
        """
        query = (
            sa.select(logs, task_runs.c.task_name)
            .select_from(logs.outerjoin(task_runs, logs.c.task_run_id == task_runs.c.id))
            .where(logs.c.flow_run_id == flow_run_id)
        )
        if task is not None:
            query = query.where(task_runs.c.task_name == task)
        if newest:
            query = query.order_by(logs.c.timestamp.desc(), logs.c.seq.desc()).limit(limit)
            return [log_row(r) for r in reversed(self._read(query))]
        query = query.order_by(logs.c.timestamp, logs.c.seq).limit(limit)
        return [log_row(r) for r in self._read(query)]

    def list_artifacts(
        self,
        *,
        flow_run_id: str | None = None,
        key: str | None = None,
        artifact_id: str | None = None,
        latest: bool = False,
        limit: int | None = None,
    ) -> list[ArtifactRow]:
        """Artifacts, newest first (see :meth:`RunStore.list_artifacts`): one query."""
        query = artifact_sql.query(
            flow_run_id=flow_run_id, key=key, artifact_id=artifact_id, latest=latest, limit=limit
        )
        return [artifact_sql.row(r) for r in self._read(query)]

    def list_task_edges(self, flow_run_id: str, *, runs: bool = False) -> list[tuple[str, str]]:
        """A flow run's recorded dependencies (see :mod:`daskflow.store.graph`)."""
        return [(row[0], row[1]) for row in self._read(edges_query(flow_run_id, runs))]

    def bin_resources(
        self, flow_run_id: str, *, start: float, width: float, bins: int
    ) -> list[ResourceBin]:
        """Worker CPU and memory per worker and time bin (see :mod:`daskflow.store.resources`)."""
        if width <= 0 or bins < 1:
            raise ValueError(f"bin_resources needs width > 0 and bins >= 1, not {width}, {bins}")
        query = bins_query(flow_run_id, start, width, self._engine.dialect.name)
        return merge_resource_bins((tuple(row) for row in self._read(query)), bins)

    def close(self) -> None:
        """Close every pooled connection (SQLite folds its WAL file back in)."""
        self._engine.dispose()


def _status_update(table: sa.Table) -> sa.Update:
    """``UPDATE table SET <status columns> WHERE id = :b_id``, for ``executemany``."""
    values: dict[str, Any] = {name: sa.bindparam(f"b_{name}") for name in STATUS_COLUMNS}
    return sa.update(table).where(table.c.id == sa.bindparam("b_id")).values(values)


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]

"""Reading the SQL store: the queries of the CLI, the panel and history (SQLAlchemy Core).

:class:`~daskflow.store.sql.SQLStore` hands every read to one
:class:`SQLReads`, made on the first read: SQLAlchemy is imported then, not
when a flow run records into a SQLite store. Each read is one query on one
pooled connection; the queries use the indexes that
:mod:`daskflow.store.schema` describes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from daskflow.states import StateType

from . import artifacts as artifact_sql
from .base import ArtifactRow, FlowRunRow, LogRow, TaskRunBin, TaskRunRow, TransitionRow, merge_bins
from .columns import flow_row, log_row, task_row, transition_row
from .graph import edges_query
from .implied import IMPLIED
from .resources import ResourceBin, bins_query, merge_resource_bins
from .schema import flow_runs, logs, task_runs, transitions

__all__ = ["SQLReads"]


def _implied_selects(flow_run_id: str, task_run_id: str) -> list[sa.Select[Any]]:
    """SELECTs of the transitions a marked task run's row implies, as ``transitions`` rows.

    The same rows as :func:`daskflow.store.implied.implied_transitions`, in
    SQL, to be read in one statement with the rows written.
    """
    r = task_runs
    nothing = sa.null()
    marked = (r.c.id == task_run_id, r.c.flow_run_id == flow_run_id, r.c.transitions_implied == 1)
    return [
        sa.select(
            sa.literal(0).label("seq"),  # ordered by implied_order, before the rows written
            r.c.flow_run_id,
            r.c.id,
            sa.literal(state.value),
            r.c[column],
            sa.literal(attempt),
            r.c.worker if attempt else nothing,
            sa.literal(""),
            nothing,
            nothing,
            nothing,
            sa.literal("{}"),
            sa.literal(order),
        ).where(*marked)
        for order, (state, column, attempt) in enumerate(IMPLIED)
    ]


class SQLReads:
    """The read queries of a SQL store, on its SQLAlchemy engine."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def _read(self, query: sa.Executable) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def last_scheduled_time(self, flow_name: str) -> float | None:
        """The latest slot of a started scheduled run of this flow (one indexed query)."""
        fr = flow_runs
        query = sa.select(sa.func.max(fr.c.scheduled_time)).where(
            fr.c.flow_name == flow_name, fr.c.start_time.is_not(None)
        )
        value = self._read(query)[0][0]
        return None if value is None else float(value)

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
        if self.engine.dialect.name == "sqlite":  # CAST truncates; merge_bins clamps below 0
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
        if task_run_id is None:
            own = sa.select(t).where(t.c.flow_run_id == flow_run_id, t.c.task_run_id.is_(None))
            return [transition_row(r) for r in self._read(own.order_by(t.c.timestamp, t.c.seq))]
        # the rows written, and those the run's row implies (store.implied), in one
        # statement: a batch that writes the implied ones meanwhile is seen before or after
        stored = sa.select(*t.c, sa.literal(len(IMPLIED)).label("implied_order")).where(
            t.c.flow_run_id == flow_run_id, t.c.task_run_id == task_run_id
        )
        query: sa.CompoundSelect[Any] = sa.union_all(
            stored, *_implied_selects(flow_run_id, task_run_id)
        )
        ordered = query.order_by("timestamp", "implied_order", "seq")
        return [transition_row(r) for r in self._read(ordered)]

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
        query = bins_query(flow_run_id, start, width, self.engine.dialect.name)
        return merge_resource_bins((tuple(row) for row in self._read(query)), bins)

"""The reading side of :class:`~daskflow.store.sql.SQLStore` (no SQLAlchemy at import).

The two reads a flow run makes as it starts (its flow's last completed run
and that run's task runs: :class:`~daskflow.engine.chunks.Durations` sizes
maps by them) are SQL text on the driver, like the writes, so recording a
flow run into SQLite never imports SQLAlchemy. Every other read (the CLI,
the panel, history) is handed to :class:`~daskflow.store.sql_reads.SQLReads`,
whose SQLAlchemy queries are made on the first such read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from daskflow.states import StateType

from .base import ArtifactRow, FlowRunRow, LogRow, TaskRunBin, TaskRunRow, TransitionRow
from .columns import flow_row, task_row
from .driver import Statements
from .resources import ResourceBin

if TYPE_CHECKING:
    from .sql_reads import SQLReads

__all__ = ["SQLReading"]


class SQLReading:
    """The read methods of the SQL store (a base of :class:`~daskflow.store.sql.SQLStore`)."""

    _sql: Statements

    @property
    def reads(self) -> SQLReads:  # the store makes them on its engine
        raise NotImplementedError

    def _records(self, sql: str, params: Sequence[Any]) -> list[Any]:
        raise NotImplementedError

    def last_scheduled_time(self, flow_name: str) -> float | None:
        """The latest slot of a started scheduled run of this flow (one indexed query)."""
        return self.reads.last_scheduled_time(flow_name)

    def list_flow_runs(
        self,
        *,
        flow: str | None = None,
        state: StateType | None = None,
        limit: int | None = 100,
    ) -> list[FlowRunRow]:
        """Flow runs, newest first, optionally of one flow name and/or state.

        SQL text on the driver, like the writes: a flow run asks it as it
        starts (the durations of its tasks' last run, which size its maps).
        """
        mark, where, params = self._sql.placeholder, [], []
        if flow is not None:
            where.append(f"flow_name = {mark}")
            params.append(flow)
        if state is not None:
            where.append(f"state = {mark}")
            params.append(StateType(state).value)
        sql = "SELECT * FROM flow_runs" + (f" WHERE {' AND '.join(where)}" if where else "")
        sql += " ORDER BY created DESC, id DESC" + ("" if limit is None else f" LIMIT {int(limit)}")
        return [flow_row(r) for r in self._records(sql, params)]

    def get_flow_run(self, flow_run_id: str) -> FlowRunRow | None:
        """One flow run by id, or by a unique id prefix of 6 characters or more."""
        return self.reads.get_flow_run(flow_run_id)

    def match_flow_runs(self, prefix: str, limit: int = 5) -> list[str]:
        """Ids of up to ``limit`` flow runs whose id starts with ``prefix`` (sorted)."""
        return self.reads.match_flow_runs(prefix, limit)

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
        index of task runs by task name and state. SQL text on the driver,
        as :meth:`list_flow_runs`.
        """
        mark, marks = self._sql.placeholder, self._sql.marks
        where, params = [f"flow_run_id = {mark}"], [flow_run_id]
        order = "seq"
        if task is not None:
            names = [task] if isinstance(task, str) else list(task)
            where.append(f"task_name IN ({marks(len(names))})")
            params.extend(names)
        if states is not None:
            values = [StateType(s).value for s in states]
            where.append(f"state IN ({marks(len(values))})")
            params.extend(values)
            if task is not None:  # the few runs of these states, found by name and state,
                order = "seq + 0"  # then sorted: not a walk in seq order through them all
        sql = f"SELECT * FROM task_runs WHERE {' AND '.join(where)} ORDER BY {order}"
        sql += "" if limit is None else f" LIMIT {int(limit)}"
        return [task_row(r) for r in self._records(sql, params)]

    def recent_task_runs(
        self,
        *,
        task: str | None = None,
        states: Sequence[StateType] | None = None,
        limit: int | None = 50,
    ) -> list[TaskRunRow]:
        """Task runs of any flow run (or none: bare task runs), newest first."""
        return self.reads.recent_task_runs(task=task, states=states, limit=limit)

    def bin_task_runs(
        self, flow_run_id: str, *, start: float, width: float, bins: int
    ) -> list[TaskRunBin]:
        """Task runs counted by task name, state and start-time bin: one GROUP BY."""
        return self.reads.bin_task_runs(flow_run_id, start=start, width=width, bins=bins)

    def count_task_runs(self, flow_run_id: str) -> dict[str, dict[StateType, int]]:
        """``{task_name: {state: count}}``: one GROUP BY on a covering index."""
        return self.reads.count_task_runs(flow_run_id)

    def list_transitions(
        self, flow_run_id: str, task_run_id: str | None = None
    ) -> list[TransitionRow]:
        """State changes of a flow run (``task_run_id`` None) or a task run, by time."""
        return self.reads.list_transitions(flow_run_id, task_run_id)

    def list_logs(
        self,
        flow_run_id: str,
        *,
        task: str | None = None,
        limit: int | None = None,
        newest: bool = False,
    ) -> list[LogRow]:
        """Log records of a flow run and its task runs, oldest first (or the newest)."""
        return self.reads.list_logs(flow_run_id, task=task, limit=limit, newest=newest)

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
        return self.reads.list_artifacts(
            flow_run_id=flow_run_id, key=key, artifact_id=artifact_id, latest=latest, limit=limit
        )

    def list_task_edges(self, flow_run_id: str, *, runs: bool = False) -> list[tuple[str, str]]:
        """A flow run's recorded dependencies (see :mod:`daskflow.store.graph`)."""
        return self.reads.list_task_edges(flow_run_id, runs=runs)

    def bin_resources(
        self, flow_run_id: str, *, start: float, width: float, bins: int
    ) -> list[ResourceBin]:
        """Worker CPU and memory per worker and time bin (see :mod:`daskflow.store.resources`)."""
        return self.reads.bin_resources(flow_run_id, start=start, width=width, bins=bins)

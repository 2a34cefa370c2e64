"""The in-memory run store: the SQL store's behaviour, kept in dictionaries.

For tests, notebooks and ``daskflow.store: memory``. It makes its rows with
the same pure functions as the SQL store (:mod:`daskflow.store.fold`), so both
answer the same queries with the same rows; only durability differs. One
lock guards everything: writes and reads are short.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from daskflow.observers.events import Event, FlowRunCreated
from daskflow.states import StateType

from .base import (
    ArtifactRow,
    FlowRunRow,
    LogRow,
    TaskRunBin,
    TaskRunRow,
    TransitionRow,
    merge_bins,
)
from .columns import decode_result
from .fold import (
    CRASH_MESSAGE,
    STATUS_COLUMNS,
    RunStatus,
    fold,
    jsonable,
    merge_artifacts,
    plan,
    transition_of,
)
from .graph import MemoryGraph
from .resources import MemoryResources, ResourceBin

__all__ = ["MemoryStore"]


@dataclass
class _Run:
    """A run's fixed fields (a row with placeholder status) and its live status."""

    row: Any
    status: RunStatus = field(default_factory=RunStatus)

    def current(self) -> Any:
        values = {n: getattr(self.status, n) for n in STATUS_COLUMNS if hasattr(self.row, n)}
        values["result"] = decode_result(self.status.result)
        return replace(self.row, **values)


class MemoryStore:
    """A run store that lives in this process only.

    Parameters
    ----------
    heartbeat_timeout
        Seconds without a heartbeat after which :meth:`mark_crashed` takes a
        SCHEDULED, PENDING, RUNNING or RETRYING flow run for dead. (A memory store dies with its
        process, so nothing calls it on its own; it is here to match the SQL
        store, which does it when opened.)

    Examples
    --------
    >>> store = MemoryStore()
    >>> store.list_flow_runs()
    []
    """

    url = "memory"

    def __init__(self, *, heartbeat_timeout: float | None = None) -> None:
        if heartbeat_timeout is None:
            from daskflow import config

            heartbeat_timeout = config.get_seconds("heartbeat-timeout")
        self.heartbeat_timeout = heartbeat_timeout
        self._replayed: set[str] = set()
        self._flows: dict[str, _Run] = {}
        self._tasks: dict[str, _Run] = {}
        self._tasks_of: dict[str, list[str]] = {}
        self._logs: dict[str, list[LogRow]] = {}
        self._transitions: dict[tuple[str, str | None], list[TransitionRow]] = {}
        self._artifacts: dict[str, tuple[int, ArtifactRow]] = {}  # id -> (insertion seq, row)
        self._graph, self._resources = MemoryGraph(), MemoryResources()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryStore({len(self._flows)} flow runs)"

    def write(self, events: Sequence[Event], *, replay_id: str | None = None) -> None:
        """Record a batch of events, all at once under the lock (``replay_id``: once)."""
        with self._lock:
            if replay_id is not None:
                if replay_id in self._replayed:
                    return
                self._replayed.add(replay_id)
                # a journal carries the creation of runs the store may hold already
                events = [
                    e
                    for e in events
                    if not (isinstance(e, FlowRunCreated) and e.flow_run_id in self._flows)
                ]
            batch = plan(events)
            for e in batch.flow_runs.values():
                row = FlowRunRow(
                    id=e.flow_run_id,
                    flow_name=e.flow_name,
                    name=e.run_name,
                    parameters=jsonable(e.parameters),
                    parent_flow_run_id=e.parent_flow_run_id,
                    state=StateType.PENDING,
                    state_message="",
                    created=e.timestamp,
                    start_time=None,
                    end_time=None,
                    version=e.version,
                    resumed_from=e.resumed_from,
                    entrypoint=e.entrypoint,
                    scheduled_time=e.scheduled_time,
                )
                self._flows[e.flow_run_id] = _Run(row)
            for t in batch.task_runs.values():
                task_row = TaskRunRow(
                    id=t.task_run_id,
                    flow_run_id=t.flow_run_id,
                    task_name=t.task_name,
                    name=t.run_name,
                    map_index=t.map_index,
                    state=StateType.PENDING,
                    created=t.timestamp,
                    start_time=None,
                    end_time=None,
                    tags=tuple(sorted(t.tags)),
                    parent_task_run_id=t.parent_task_run_id,
                )
                self._tasks[t.task_run_id] = _Run(task_row)
                self._tasks_of.setdefault(t.flow_run_id, []).append(t.task_run_id)
            for runs, changes in (
                (self._flows, batch.flow_changes),
                (self._tasks, batch.task_changes),
            ):
                for run_id, run_changes in changes.items():
                    run = runs.get(run_id)
                    if run is not None:
                        run.status = fold(run.status, run_changes)
            for change in batch.changes:
                key = (change.flow_run_id, change.task_run_id)
                self._transitions.setdefault(key, []).append(transition_of(change))
            for log in batch.logs:
                self._logs.setdefault(log.flow_run_id, []).append(
                    LogRow(
                        log.flow_run_id,
                        log.task_run_id,
                        log.timestamp,
                        log.level,
                        log.logger,
                        log.message,
                    )
                )
            if batch.artifacts:
                stored = self._artifacts
                known = {
                    e.artifact_id: stored[e.artifact_id][1]
                    for e in batch.artifacts
                    if e.artifact_id in stored
                }
                for artifact_id, artifact in merge_artifacts(known, batch.artifacts).items():
                    seq = stored[artifact_id][0] if artifact_id in stored else len(stored)
                    stored[artifact_id] = (seq, artifact)
            self._graph.add(batch.edges)
            self._resources.add(batch.samples)

    def heartbeat(self, flow_run_ids: Sequence[str], now: float) -> None:
        """Mark these flow runs alive at ``now``."""
        with self._lock:
            for flow_run_id in flow_run_ids:
                run = self._flows.get(flow_run_id)
                if run is not None:
                    run.row = replace(run.row, heartbeat=now)

    def request_cancel(self, flow_run_id: str, now: float) -> FlowRunRow | None:
        """Ask for a flow run to be cancelled (see :meth:`RunStore.request_cancel`)."""
        row = self.get_flow_run(flow_run_id)
        if row is None:
            return None
        with self._lock:
            run = self._flows[row.id]
            if run.row.cancel_requested is None and not run.status.state.is_final:
                run.row = replace(run.row, cancel_requested=now)
            return run.current()

    def cancel_requests(self, flow_run_ids: Sequence[str]) -> list[str]:
        """Which of these flow runs were asked to cancel."""
        with self._lock:
            return [
                i
                for i in flow_run_ids
                if (run := self._flows.get(i)) is not None and run.row.cancel_requested is not None
            ]

    def last_scheduled_time(self, flow_name: str) -> float | None:
        """The latest slot of a started scheduled run of this flow."""
        with self._lock:
            slots = [
                run.row.scheduled_time
                for run in self._flows.values()
                if run.row.flow_name == flow_name
                and run.row.scheduled_time is not None
                and run.status.start_time is not None
            ]
        return max(slots, default=None)

    def mark_crashed(self, now: float | None = None) -> list[str]:
        """Mark flow runs without a recent heartbeat CRASHED (as the SQL store on open)."""
        now = time.time() if now is None else now
        crashed = []
        with self._lock:
            for run in self._flows.values():
                last = run.row.heartbeat if run.row.heartbeat is not None else run.row.created
                alive = run.status.state in (
                    StateType.SCHEDULED,
                    StateType.PENDING,
                    StateType.RUNNING,
                    StateType.RETRYING,
                )
                if alive and last < now - self.heartbeat_timeout:
                    crashed.append(run.row.id)
                    tasks = [self._tasks[i] for i in self._tasks_of.get(run.row.id, ())]
                    for r in [run, *tasks]:
                        if not r.status.state.is_final:
                            self._crash(r, now)
        return crashed

    def _crash(self, run: _Run, now: float) -> None:
        row = run.row
        task_run_id = row.id if isinstance(row, TaskRunRow) else None
        flow_run_id = row.flow_run_id if isinstance(row, TaskRunRow) else row.id
        self._transitions.setdefault((flow_run_id, task_run_id), []).append(
            TransitionRow(
                flow_run_id,
                task_run_id,
                StateType.CRASHED,
                now,
                run.status.attempts,
                run.status.worker,
                CRASH_MESSAGE,
            )
        )
        run.status = run.status._replace(
            state=StateType.CRASHED,
            state_time=now,
            state_message=CRASH_MESSAGE,
            end_time=now,
        )

    def list_flow_runs(
        self,
        *,
        flow: str | None = None,
        state: StateType | None = None,
        limit: int | None = 100,
    ) -> list[FlowRunRow]:
        """Flow runs, newest first, optionally of one flow name and/or state."""
        wanted = None if state is None else StateType(state)
        with self._lock:
            rows = [run.current() for run in self._flows.values()]
        rows = [
            r
            for r in rows
            if (flow is None or r.flow_name == flow) and (wanted is None or r.state is wanted)
        ]
        rows.sort(key=lambda r: (r.created, r.id), reverse=True)
        return rows[:limit]

    def get_flow_run(self, flow_run_id: str) -> FlowRunRow | None:
        """One flow run by id, or by a unique id prefix of 6 characters or more."""
        with self._lock:
            run = self._flows.get(flow_run_id)
            if run is None and len(flow_run_id) >= 6:
                found = [r for i, r in self._flows.items() if i.startswith(flow_run_id)]
                run = found[0] if len(found) == 1 else None
            return run.current() if run is not None else None

    def match_flow_runs(self, prefix: str, limit: int = 5) -> list[str]:
        """Ids of up to ``limit`` flow runs whose id starts with ``prefix`` (sorted)."""
        with self._lock:
            return sorted(i for i in self._flows if i.startswith(prefix))[:limit]

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
        wanted = None if states is None else {StateType(s) for s in states}
        names = None if task is None else {task} if isinstance(task, str) else set(task)
        with self._lock:
            runs = [self._tasks[i] for i in self._tasks_of.get(flow_run_id, ())]
            rows = [
                r.current()
                for r in runs
                if (names is None or r.row.task_name in names)
                and (wanted is None or r.status.state in wanted)
            ]
        return rows[:limit]

    def recent_task_runs(
        self,
        *,
        task: str | None = None,
        states: Sequence[StateType] | None = None,
        limit: int | None = 50,
    ) -> list[TaskRunRow]:
        """Task runs of any flow run (or none: bare task runs), newest first."""
        wanted = None if states is None else {StateType(s) for s in states}
        with self._lock:
            rows = [
                r.current()
                for r in reversed(self._tasks.values())
                if (task is None or r.row.task_name == task)
                and (wanted is None or r.status.state in wanted)
            ]
        return rows[:limit]

    def bin_task_runs(
        self, flow_run_id: str, *, start: float, width: float, bins: int
    ) -> list[TaskRunBin]:
        """Task runs counted by task name, state and start-time bin (see the SQL store)."""
        if width <= 0 or bins < 1:
            raise ValueError(f"bin_task_runs needs width > 0 and bins >= 1, not {width}, {bins}")
        groups = []
        with self._lock:
            for task_run_id in self._tasks_of.get(flow_run_id, ()):
                run = self._tasks[task_run_id]
                began = run.status.start_time
                raw = None if began is None else math.floor((began - start) / width)
                groups.append((run.row.task_name, run.status.state, raw, 1))
        return merge_bins(groups, bins)

    def count_task_runs(self, flow_run_id: str) -> dict[str, dict[StateType, int]]:
        """``{task_name: {state: count}}`` for a flow run."""
        counts: dict[str, dict[StateType, int]] = {}
        with self._lock:
            for task_run_id in self._tasks_of.get(flow_run_id, ()):
                run = self._tasks[task_run_id]
                per_state = counts.setdefault(run.row.task_name, {})
                per_state[run.status.state] = per_state.get(run.status.state, 0) + 1
        return counts

    def list_transitions(
        self, flow_run_id: str, task_run_id: str | None = None
    ) -> list[TransitionRow]:
        """State changes of a flow run (``task_run_id`` None) or a task run, by time."""
        with self._lock:
            found = list(self._transitions.get((flow_run_id, task_run_id), ()))
        return sorted(found, key=lambda t: t.timestamp)

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
        with self._lock:
            rows = []
            for log in self._logs.get(flow_run_id, ()):
                run = self._tasks.get(log.task_run_id) if log.task_run_id else None
                name = run.row.task_name if run is not None else None
                if task is None or name == task:
                    rows.append(replace(log, task_name=name))
        rows.sort(key=lambda r: r.timestamp)
        if newest and limit is not None:
            return rows[max(0, len(rows) - limit) :]
        return rows[:limit]

    def list_artifacts(
        self,
        *,
        flow_run_id: str | None = None,
        key: str | None = None,
        artifact_id: str | None = None,
        latest: bool = False,
        limit: int | None = None,
    ) -> list[ArtifactRow]:
        """Artifacts, newest first (see :meth:`RunStore.list_artifacts`)."""
        with self._lock:
            found = [
                (row.created, seq, row)
                for seq, row in self._artifacts.values()
                if (flow_run_id is None or row.flow_run_id == flow_run_id)
                and (key is None or row.key == key)
                and (artifact_id is None or row.id == artifact_id)
                and (not latest or row.key is not None)
            ]
            names: dict[str | None, str] = {
                row.task_run_id: run.row.task_name
                for _, _, row in found
                if row.task_run_id is not None
                and (run := self._tasks.get(row.task_run_id)) is not None
            }
        found.sort(key=lambda entry: entry[:2], reverse=True)
        rows = [replace(row, task_name=names.get(row.task_run_id)) for _, _, row in found]
        if latest:  # the first of each key is its newest
            newest: dict[str | None, ArtifactRow] = {}
            for row in rows:
                newest.setdefault(row.key, row)
            rows = list(newest.values())
        return rows[:limit]

    def list_task_edges(self, flow_run_id: str, *, runs: bool = False) -> list[tuple[str, str]]:
        """A flow run's recorded dependencies (see :mod:`daskflow.store.graph`)."""
        with self._lock:
            return self._graph.edges(flow_run_id, runs)

    def bin_resources(
        self, flow_run_id: str, *, start: float, width: float, bins: int
    ) -> list[ResourceBin]:
        """Worker CPU and memory per worker and time bin (see :mod:`daskflow.store.resources`)."""
        if width <= 0 or bins < 1:
            raise ValueError(f"bin_resources needs width > 0 and bins >= 1, not {width}, {bins}")
        with self._lock:
            return self._resources.bins(flow_run_id, start, width, bins)

    def close(self) -> None:
        """Nothing to release: the runs stay for the life of the process."""

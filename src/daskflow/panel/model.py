"""The panel's one model: what every view shows, read from the run store.

The engine writes each flow run's events to the run store in batches (within
about 100 ms of a state change), so polling the store is how live runs
appear, in this process, on a remote cluster, or in another process
altogether (``daskflow dashboard``). :meth:`PanelModel.refresh` runs every
half second; each refresh is a handful of bounded queries, whatever the size
of the runs: recent flow runs, per-task-name counts of the selected run (one
GROUP BY), a bounded read of its task runs (or, past :data:`TIMELINE_LIMIT`,
one span per task name), its failed task runs and its first log records.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from daskflow.states import StateType
from daskflow.store.base import FlowRunRow, LogRow, RunStore, TaskRunRow, TransitionRow

__all__ = ["FAILED_STATES", "TIMELINE_LIMIT", "PanelModel"]

#: Past this many task runs the timeline shows one bar per task name, not per run.
TIMELINE_LIMIT = 2_000
#: Flow runs listed, failed task runs and log records shown.
RECENT_RUNS, FAILURES_SHOWN, LOGS_SHOWN = 50, 200, 200
#: Retried task runs whose attempts the timeline draws one by one.
ATTEMPTS_SHOWN = 100
FAILED_STATES = (StateType.FAILED, StateType.TIMED_OUT, StateType.CRASHED)


class PanelModel:
    """What the panel shows, refreshed from a run store.

    Parameters
    ----------
    store
        The run store to read.
    scheduler
        A ``distributed.Scheduler`` in this process (the panel served on the
        Dask dashboard), for worker CPU and memory; None otherwise.
    clock
        Seconds since the epoch (tests pass their own).
    """

    def __init__(
        self, store: RunStore, scheduler: Any = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.scheduler = scheduler
        self.clock = clock
        self.opened = clock()
        self.selected: str | None = None
        self.follow = True  # select the newest run until the user picks one
        self.flow_filter: str | None = None
        self.state_filter: StateType | None = None
        self.flow_runs: list[FlowRunRow] = []
        self.flow_names: list[str] = []
        self.run_counts: dict[str, dict[str, dict[StateType, int]]] = {}
        self.counts: dict[str, dict[StateType, int]] = {}
        self.task_runs: list[TaskRunRow] = []
        self.spans: dict[str, tuple[int, float | None, float | None]] = {}
        self.attempts: dict[str, list[TransitionRow]] = {}  # transitions of retried runs
        self.failures: list[TaskRunRow] = []
        self.logs: list[LogRow] = []
        self.alerts: list[FlowRunRow] = []
        self.resources: dict[str, float] | None = None

    def select(self, flow_run_id: str | None) -> None:
        """Show this flow run in the detail views (None: follow the newest)."""
        self.selected = flow_run_id
        self.follow = flow_run_id is None

    @property
    def selected_run(self) -> FlowRunRow | None:
        return next((r for r in self.flow_runs if r.id == self.selected), None)

    @property
    def total(self) -> int:
        """Task runs of the selected flow run."""
        return sum(sum(by_state.values()) for by_state in self.counts.values())

    def refresh(self) -> None:
        """Read what changed since the last refresh (a few bounded queries)."""
        store = self.store
        every = store.list_flow_runs(limit=RECENT_RUNS)
        self.flow_names = sorted({r.flow_name for r in every})
        self.flow_runs = [
            r
            for r in every
            if (self.flow_filter is None or r.flow_name == self.flow_filter)
            and (self.state_filter is None or r.state is self.state_filter)
        ]
        self.alerts = [
            r
            for r in every
            if r.state in (StateType.FAILED, StateType.CRASHED, StateType.TIMED_OUT)
            and (r.end_time or r.created) >= self.opened
        ]
        for run in self.flow_runs:  # ended runs are counted once, running ones each time
            if run.id not in self.run_counts or not run.state.is_final:
                self.run_counts[run.id] = store.count_task_runs(run.id)
        if self.follow and self.flow_runs:
            self.selected = self.flow_runs[0].id
        self._refresh_selected()
        self.resources = self._read_resources()

    def _refresh_selected(self) -> None:
        store, run_id = self.store, self.selected
        if run_id is None:
            self.counts, self.task_runs, self.spans, self.failures, self.logs = {}, [], {}, [], []
            return
        self.counts = self.run_counts.get(run_id) or store.count_task_runs(run_id)
        if self.total <= TIMELINE_LIMIT:
            self.task_runs, self.spans = store.list_task_runs(run_id), {}
            retried = [r for r in self.task_runs if r.attempts > 1][:ATTEMPTS_SHOWN]
            self.attempts = {r.id: store.list_transitions(run_id, r.id) for r in retried}
        else:
            self.task_runs, self.spans, self.attempts = [], store.span_task_runs(run_id), {}
        self.failures = store.list_task_runs(run_id, states=FAILED_STATES, limit=FAILURES_SHOWN)
        self.logs = store.list_logs(run_id, limit=LOGS_SHOWN)

    def _read_resources(self) -> dict[str, float] | None:
        """Total worker CPU (%) and memory (bytes) now, from the scheduler if attached."""
        scheduler = self.scheduler
        if scheduler is None:
            return None
        cpu = memory = 0.0
        for worker in list(scheduler.workers.values()):
            metrics = worker.metrics or {}
            cpu += float(metrics.get("cpu", 0.0) or 0.0)
            memory += float(metrics.get("memory", 0.0) or 0.0)
        return {"time": self.clock(), "cpu": cpu, "memory": memory}

"""The progress model of one flow run: counts per task name, fed by events.

Design note
-----------
Every progress view — the ``rich`` lines in a terminal, the HTML in a
notebook cell, the Bokeh panel — shows the same thing: for one top-level flow
run and its subflows, how many task runs of each task name are pending,
running, done or failed, and how the flow run itself stands. That model lives
here, once; the views only *render* a :class:`ProgressSnapshot` (as
``distributed.diagnostics.progress`` keeps tracking apart from its bars).

:class:`RunTracker` is an :class:`~daskflow.observers.events.Observer`: the
bus hands it event batches on its dispatcher thread, and views read a
:meth:`~RunTracker.snapshot` from theirs, under one lock. Its state:

- ``flow ids``: the flow run followed and every subflow run created under it
  (a :class:`~daskflow.observers.events.FlowRunCreated` whose parent is
  already followed joins the set); events of any other run are skipped;
- ``runs``: task run id → (the counts of its task name, its bucket). A state
  change moves one unit from the old bucket to the new one, so every event
  costs O(1) (under a microsecond), and memory is one small entry per task
  run (about 10 MB at 100,000 task runs).

States fall into five buckets (see :data:`BUCKETS`): pending (``SCHEDULED``,
``PENDING``), running (``RUNNING``, ``RETRYING``), completed (``COMPLETED``,
``CACHED``), failed (``FAILED``, ``TIMED_OUT``, ``UPSTREAM_FAILED``,
``CRASHED``) and cancelled. A final state is never left: a report that
arrives late (the ``RETRYING`` the client adds for an attempt lost with its
worker) does not move a finished run back.

Retries are counted apart: each ``RETRYING`` transition of a task run (one
per failed attempt that is tried again, whether it failed in the user's code
or with its worker) adds one to its task name's ``retried``; the same
transition reported twice counts once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from daskflow.observers.events import Event, FlowRunCreated, Observer, StateChanged, TaskRunCreated
from daskflow.states import StateType

__all__ = ["BUCKETS", "ProgressSnapshot", "RunTracker", "TaskProgress"]

PENDING, RUNNING, COMPLETED, FAILED, CANCELLED = range(5)

#: The bucket of every state type: pending, running, completed, failed, cancelled (0-4).
BUCKETS: dict[StateType, int] = {
    StateType.SCHEDULED: PENDING,
    StateType.PENDING: PENDING,
    StateType.RUNNING: RUNNING,
    StateType.RETRYING: RUNNING,
    StateType.COMPLETED: COMPLETED,
    StateType.CACHED: COMPLETED,
    StateType.FAILED: FAILED,
    StateType.TIMED_OUT: FAILED,
    StateType.UPSTREAM_FAILED: FAILED,
    StateType.CRASHED: FAILED,
    StateType.CANCELLED: CANCELLED,
}
_FINAL_BUCKETS = frozenset({COMPLETED, FAILED, CANCELLED})


class _TaskCounts:
    """Mutable counts of one task name, owned by the tracker (under its lock)."""

    __slots__ = ("counts", "first_error", "name", "retried")

    def __init__(self, name: str) -> None:
        self.name = name
        self.counts = [0, 0, 0, 0, 0]  # indexed by bucket
        self.first_error: str | None = None
        self.retried = 0

    def freeze(self) -> TaskProgress:
        """An immutable copy for views."""
        pending, running, completed, failed, cancelled = self.counts
        return TaskProgress(
            self.name,
            pending,
            running,
            completed,
            failed,
            cancelled,
            self.first_error,
            self.retried,
        )


@dataclass(frozen=True, slots=True)
class TaskProgress:
    """How the task runs of one task name stand.

    Attributes
    ----------
    name
        The task name (runs of subflows included).
    pending, running, completed, failed, cancelled
        Task runs in each bucket: ``running`` counts ``RETRYING`` runs,
        ``completed`` counts ``CACHED`` ones, ``failed`` counts ``FAILED``,
        ``TIMED_OUT``, ``UPSTREAM_FAILED`` and ``CRASHED``.
    first_error
        The message of the first run that failed by itself (not
        ``UPSTREAM_FAILED``), or None.
    retried
        Retries so far: attempts that failed and were tried again, over
        every run of this name.
    """

    name: str
    pending: int = 0
    running: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    first_error: str | None = None
    retried: int = 0

    @property
    def total(self) -> int:
        """Every task run of this name created so far."""
        return self.pending + self.running + self.completed + self.failed + self.cancelled

    @property
    def finished(self) -> int:
        """Task runs in a final state."""
        return self.completed + self.failed + self.cancelled

    @property
    def retries_note(self) -> str:
        """``"1 retry"``, ``"3 retries"``, or empty when no run was retried."""
        if not self.retried:
            return ""
        return f"{self.retried} {'retry' if self.retried == 1 else 'retries'}"

    def describe(self) -> str:
        """The one line every view shows, e.g. ``"7 done / 1 failed / 2 running of 10"``.

        Retries follow when there were some: ``"... running of 10, 3 retries"``.
        """
        line = (
            f"{self.completed} done / {self.failed} failed / {self.running} running of {self.total}"
        )
        return f"{line}, {self.retries_note}" if self.retried else line


@dataclass(frozen=True, slots=True)
class ProgressSnapshot:
    """What a view renders: one flow run (with its subflows) at one moment.

    Attributes
    ----------
    flow_run_id, flow_name
        The top-level flow run followed.
    state
        Its latest state type (None until the tracker saw one).
    started
        When it began (seconds since the epoch).
    ended
        When it reached a final state, or None while it runs.
    taken
        When this snapshot was taken.
    tasks
        One :class:`TaskProgress` per task name, in the order names first
        appeared.
    subflows
        Subflow runs created under the flow run (at any depth).
    """

    flow_run_id: str
    flow_name: str
    state: StateType | None
    started: float
    ended: float | None
    taken: float
    tasks: tuple[TaskProgress, ...]
    subflows: int = 0

    @property
    def duration(self) -> float:
        """Seconds from the start to the end, or to this snapshot while running."""
        return max(0.0, (self.ended if self.ended is not None else self.taken) - self.started)

    @property
    def state_type(self) -> StateType:
        """The state to show: PENDING until the tracker saw one."""
        return self.state or StateType.PENDING

    @property
    def subflows_note(self) -> str:
        """``", 2 subflow run(s)"`` when there are subflows, else empty."""
        return f", {self.subflows} subflow run(s)" if self.subflows else ""

    @property
    def finished(self) -> bool:
        """True once the flow run reached a final state."""
        return self.state is not None and self.state.is_final

    @property
    def totals(self) -> TaskProgress:
        """Counts over every task name, named ``"all tasks"``."""
        tasks = self.tasks
        return TaskProgress(
            "all tasks",
            pending=sum(t.pending for t in tasks),
            running=sum(t.running for t in tasks),
            completed=sum(t.completed for t in tasks),
            failed=sum(t.failed for t in tasks),
            cancelled=sum(t.cancelled for t in tasks),
            retried=sum(t.retried for t in tasks),
        )


class RunTracker(Observer):
    """Counts the task runs of one flow run and its subflows, by task name.

    Register it on :data:`daskflow.observers.events.bus` for the run's
    duration (:func:`daskflow.progress.display_for` does) and read
    :meth:`snapshot` from any thread.

    Parameters
    ----------
    flow_run_id
        The top-level flow run to follow.
    flow_name
        Its flow's name, for the views.
    started
        When the run began; defaults to now.

    Examples
    --------
    >>> from daskflow.observers.events import bus
    >>> tracker = bus.register(RunTracker(flow_run_id, "etl"))  # doctest: +SKIP
    >>> # ... the flow runs
    >>> bus.unregister(tracker)  # doctest: +SKIP
    >>> tracker.snapshot().totals.completed  # doctest: +SKIP
    14
    """

    def __init__(self, flow_run_id: str, flow_name: str, started: float | None = None) -> None:
        self.flow_run_id = flow_run_id
        self.flow_name = flow_name
        self._started = time.time() if started is None else started
        self._ended: float | None = None
        self._state: StateType | None = None
        self._flow_ids = {flow_run_id}
        self._tasks: dict[str, _TaskCounts] = {}
        self._runs: dict[str, tuple[_TaskCounts, int]] = {}
        self._retries: set[tuple[str, int, float]] = set()  # (run id, attempt, time) counted
        self._lock = threading.Lock()

    def on_events(self, events: Sequence[Event], **kwargs: Any) -> None:
        """Apply a batch of events (on the bus's dispatcher thread)."""
        flow_ids = self._flow_ids
        with self._lock:
            for event in events:
                if event.flow_run_id not in flow_ids:
                    if isinstance(event, FlowRunCreated) and event.parent_flow_run_id in flow_ids:
                        flow_ids.add(event.flow_run_id)  # a subflow: follow it too
                    continue
                if isinstance(event, StateChanged):
                    if event.task_run_id is None:
                        self._flow_state(event)
                    else:
                        self._task_state(event)
                elif isinstance(event, TaskRunCreated):
                    self._created(event)
                elif isinstance(event, FlowRunCreated) and event.flow_run_id == self.flow_run_id:
                    self._started = event.timestamp

    def _created(self, event: TaskRunCreated) -> None:
        if event.task_run_id in self._runs:
            return
        counts = self._tasks.get(event.task_name)
        if counts is None:
            counts = self._tasks[event.task_name] = _TaskCounts(event.task_name)
        counts.counts[PENDING] += 1
        self._runs[event.task_run_id] = (counts, PENDING)

    def _task_state(self, event: StateChanged) -> None:
        assert event.task_run_id is not None
        entry = self._runs.get(event.task_run_id)
        if entry is None:  # created before the tracker listened: its name is unknown
            return
        counts, old = entry
        new = BUCKETS[event.state.type]
        if old in _FINAL_BUCKETS:
            return
        if event.state.type is StateType.RETRYING:
            retry = (event.task_run_id, event.attempt, event.state.timestamp)
            if retry not in self._retries:
                self._retries.add(retry)
                counts.retried += 1
        if new == old:
            return
        counts.counts[old] -= 1
        counts.counts[new] += 1
        self._runs[event.task_run_id] = (counts, new)
        if (
            new == FAILED
            and counts.first_error is None
            and event.state.type is not StateType.UPSTREAM_FAILED
        ):
            counts.first_error = event.state.message or event.state.type.value

    def _flow_state(self, event: StateChanged) -> None:
        if event.flow_run_id != self.flow_run_id:
            return  # a subflow's own state: its task runs are what we count
        if self._state is not None and self._state.is_final:
            return
        self._state = event.state.type
        if event.state.type.is_final:
            self._ended = event.state.timestamp

    def snapshot(self) -> ProgressSnapshot:
        """The counts now, as an immutable :class:`ProgressSnapshot` (any thread)."""
        with self._lock:
            return ProgressSnapshot(
                self.flow_run_id,
                self.flow_name,
                self._state,
                self._started,
                self._ended,
                time.time(),
                tuple(counts.freeze() for counts in self._tasks.values()),
                len(self._flow_ids) - 1,
            )

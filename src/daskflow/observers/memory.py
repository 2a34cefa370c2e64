"""An observer that keeps every run in memory: for tests and notebooks.

It is also the reference for what an observer must make of the events: one
record per flow run and per task run, the ordered list of transitions, the
number of attempts and the worker of the last one.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from daskflow.observers.events import (
    Event,
    FlowRunCreated,
    LogEmitted,
    Observer,
    StateChanged,
    TaskRunCreated,
)
from daskflow.states import State, StateType

__all__ = ["FlowRunRecord", "MemoryObserver", "TaskRunRecord"]


class _Transitions:
    transitions: list[StateChanged]

    @property
    def state(self) -> State | None:
        """The latest state, or None before any."""
        return self.transitions[-1].state if self.transitions else None

    @property
    def state_types(self) -> list[StateType]:
        """Every state type entered, in order."""
        return [t.state.type for t in self.transitions]


@dataclass
class TaskRunRecord(_Transitions):
    """What the observer knows of one task run."""

    id: str
    flow_run_id: str
    task_name: str
    name: str
    map_index: int | None
    tags: frozenset[str]
    transitions: list[StateChanged] = field(default_factory=list)

    @property
    def attempts(self) -> int:
        return sum(1 for t in self.transitions if t.state.type is StateType.RUNNING)

    @property
    def workers(self) -> list[str | None]:
        return [t.worker for t in self.transitions if t.state.type is StateType.RUNNING]


@dataclass
class FlowRunRecord(_Transitions):
    """What the observer knows of one flow run."""

    id: str
    flow_name: str
    name: str
    parameters: dict[str, Any]
    parent_flow_run_id: str | None
    transitions: list[StateChanged] = field(default_factory=list)
    task_run_ids: list[str] = field(default_factory=list)


class MemoryObserver(Observer):
    """Keeps :class:`FlowRunRecord` and :class:`TaskRunRecord` objects by id."""

    def __init__(self) -> None:
        self.flow_runs: dict[str, FlowRunRecord] = {}
        self.task_runs: dict[str, TaskRunRecord] = {}
        self.logs: list[LogEmitted] = []
        self.batches = 0
        self._lock = threading.Lock()

    def on_events(self, events: Sequence[Event], **kwargs: Any) -> None:
        with self._lock:
            self.batches += 1
            for event in events:
                if isinstance(event, StateChanged):
                    record = (
                        self.flow_runs[event.flow_run_id]
                        if event.task_run_id is None
                        else self.task_runs[event.task_run_id]
                    )
                    # late reports (a worker that died) go where their time says
                    bisect.insort_right(record.transitions, event, key=lambda t: t.state.timestamp)
                elif isinstance(event, TaskRunCreated):
                    self.task_runs[event.task_run_id] = TaskRunRecord(
                        event.task_run_id,
                        event.flow_run_id,
                        event.task_name,
                        event.run_name,
                        event.map_index,
                        event.tags,
                    )
                    flow_run = self.flow_runs.get(event.flow_run_id)
                    if flow_run is not None:
                        flow_run.task_run_ids.append(event.task_run_id)
                elif isinstance(event, LogEmitted):
                    self.logs.append(event)
                elif isinstance(event, FlowRunCreated):
                    self.flow_runs[event.flow_run_id] = FlowRunRecord(
                        event.flow_run_id,
                        event.flow_name,
                        event.run_name,
                        event.parameters,
                        event.parent_flow_run_id,
                    )

    def task_runs_of(self, flow_run_id: str) -> list[TaskRunRecord]:
        """The task runs of one flow run, in creation order."""
        with self._lock:
            return [self.task_runs[i] for i in self.flow_runs[flow_run_id].task_run_ids]

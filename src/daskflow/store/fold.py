"""From events to rows: the pure part of every run store.

A store turns each batch of events into a few bulk operations. This module
does the thinking, with no I/O, so the SQL and the in-memory stores make the
same rows out of the same events:

- :func:`plan` sorts a batch into new flow runs, new task runs, transition
  rows, log records, task dependencies, worker samples, and the state
  changes of each run, grouped per run.
- :func:`fold` applies one run's state changes to its :class:`RunStatus` (the
  columns a state change updates) and returns the new status.
- :func:`merge_artifacts` applies a batch's artifact events to the stored
  rows of the artifacts they touch.

Events of one run may arrive in several batches, and a transition can arrive
late with an earlier timestamp (an attempt whose worker died is only known
at the end of the flow run: its RETRYING, and its RUNNING when the worker
died before sending it). :func:`fold` therefore orders by
timestamp, not by arrival: a transition older than the run's current state is
recorded (its transition row) but does not change the state, and a final
state is never replaced by one that is not final. Every RUNNING transition
counts as an attempt and moves ``start_time`` to the earliest one, late or not.

Parameters and transition details are stored as JSON: each value that
:mod:`json` cannot encode is kept as its ``repr`` (:func:`jsonable`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from daskflow.observers.events import (
    ArtifactCreated,
    ArtifactUpdated,
    Event,
    FlowRunCreated,
    LogEmitted,
    ResourcesSampled,
    StateChanged,
    TaskEdgesAdded,
    TaskRunCreated,
)
from daskflow.states import StateType

from .base import ArtifactRow, TransitionRow

__all__ = [
    "CRASH_MESSAGE",
    "STATUS_COLUMNS",
    "BatchPlan",
    "RunStatus",
    "fold",
    "jsonable",
    "merge_artifacts",
    "plan",
    "transition_of",
]


class RunStatus(NamedTuple):
    """The columns of a flow run or task run that state changes update.

    ``state_time`` is the timestamp of the transition that set ``state``;
    None until the first state change (creation alone sets no time, so a
    worker whose clock runs behind the client's is not taken for late).
    A named tuple, not a frozen dataclass: a batch makes one per run, and a
    tuple is made several times faster.
    """

    state: StateType = StateType.PENDING
    state_time: float | None = None
    state_message: str = ""
    start_time: float | None = None
    end_time: float | None = None
    attempts: int = 0
    worker: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    traceback: str | None = None
    result: str | None = None  # JSON: where the run's result is stored (see results.storage)


#: The state message of runs marked CRASHED because their flow process went silent.
CRASH_MESSAGE = "the flow process stopped sending heartbeats"

#: Column names of :class:`RunStatus`, in order (the SQL store's update columns).
STATUS_COLUMNS: tuple[str, ...] = RunStatus._fields


def fold(status: RunStatus, changes: Sequence[StateChanged]) -> RunStatus:
    """Apply state changes of one run to its status.

    Parameters
    ----------
    status
        The run's status before these changes (``RunStatus()`` for a new run).
    changes
        Its state changes, in any order; they are applied by timestamp
        (ties keep their order).

    Returns
    -------
    RunStatus
        The new status. ``status`` itself is not modified.

    Examples
    --------
    >>> from daskflow.states import State
    >>> running = StateChanged("f", "t", State(StateType.RUNNING, 10.0), 1, "w1")
    >>> done = StateChanged("f", "t", State(StateType.COMPLETED, 12.0), 1, "w1")
    >>> late = StateChanged("f", "t", State(StateType.RETRYING, 9.0), details={"worker_died": True})
    >>> s = fold(RunStatus(), [running, done, late])
    >>> s.state.value, s.start_time, s.end_time, s.attempts, s.worker
    ('COMPLETED', 10.0, 12.0, 1, 'w1')
    """
    # plain locals, not a dict: this runs for every run of every batch
    state, state_time, message = status.state, status.state_time, status.state_message
    start, end, attempts, worker = (
        status.start_time,
        status.end_time,
        status.attempts,
        status.worker,
    )
    error = (status.error_type, status.error_message, status.traceback)
    result = status.result
    final = state.is_final
    for change in sorted(changes, key=_timestamp) if len(changes) > 1 else changes:
        new = change.state
        kind, when = new.type, new.timestamp
        if kind is _RUNNING:
            attempts += 1
            start = when if start is None or when < start else start
        if (state_time is not None and when < state_time) or (final and not kind.is_final):
            # late, or after a final state (which is never left): history only,
            # but the client's own final state of a run whose worker's report
            # came after it (the flow run ended first) says neither where the
            # run ran nor where its result is stored: the report fills them in
            worker = worker or change.worker
            if result is None and kind is state and final and change.details:
                stored = change.details.get("result")
                if stored is not None:
                    result = json.dumps(jsonable(stored))
            continue
        state, state_time, message, final = kind, when, new.message, kind.is_final
        if final:
            end = when
            stored = change.details.get("result") if change.details else None
            if stored is not None:
                result = json.dumps(jsonable(stored))
        if change.worker is not None:
            worker = change.worker
        if new.error_type is not None:
            error = (new.error_type, new.error_message, new.traceback)
        elif kind.is_completed:
            error = (None, None, None)
    return RunStatus(state, state_time, message, start, end, attempts, worker, *error, result)


_RUNNING = StateType.RUNNING


def _timestamp(change: StateChanged) -> float:
    return change.state.timestamp


def jsonable(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``mapping`` that :func:`json.dumps` can encode.

    Each value is replaced by what a JSON round trip gives back (tuples
    become lists), or by its ``repr`` when JSON cannot encode it (NaN too:
    the stored JSON stays strict).

    Examples
    --------
    >>> jsonable({"days": ("mon", "tue"), "when": ...})
    {'days': ['mon', 'tue'], 'when': 'Ellipsis'}
    """
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        try:
            out[str(key)] = json.loads(json.dumps(value, allow_nan=False))
        except (TypeError, ValueError, RecursionError):
            try:
                out[str(key)] = repr(value)
            except Exception:  # a broken __repr__ must not cost the run its record
                out[str(key)] = f"<{type(value).__name__} object>"
    return out


def transition_of(change: StateChanged) -> TransitionRow:
    """The transition row recording one state change."""
    state = change.state
    return TransitionRow(
        flow_run_id=change.flow_run_id,
        task_run_id=change.task_run_id,
        state=state.type,
        timestamp=state.timestamp,
        attempt=change.attempt,
        worker=change.worker,
        message=state.message,
        error_type=state.error_type,
        error_message=state.error_message,
        traceback=state.traceback,
        details=jsonable(change.details) if change.details else {},
    )


@dataclass
class BatchPlan:
    """One batch of events, sorted into what a store writes.

    Attributes
    ----------
    flow_runs, task_runs
        Runs created in this batch, by id, in the order they were created.
    flow_changes, task_changes
        State changes per run id (new runs and runs of earlier batches), in
        arrival order.
    changes
        Every state change (one transition row each), in arrival order.
    logs
        Log records, in arrival order.
    artifacts
        Artifacts created and progress updates, in arrival order.
    edges, samples
        Task dependencies and worker samples (:mod:`daskflow.store.graph`,
        :mod:`daskflow.store.resources`), in arrival order.
    """

    flow_runs: dict[str, FlowRunCreated] = field(default_factory=dict)
    task_runs: dict[str, TaskRunCreated] = field(default_factory=dict)
    flow_changes: dict[str, list[StateChanged]] = field(default_factory=dict)
    task_changes: dict[str, list[StateChanged]] = field(default_factory=dict)
    changes: list[StateChanged] = field(default_factory=list)
    logs: list[LogEmitted] = field(default_factory=list)
    artifacts: list[ArtifactCreated | ArtifactUpdated] = field(default_factory=list)
    edges: list[TaskEdgesAdded] = field(default_factory=list)
    samples: list[ResourcesSampled] = field(default_factory=list)


def plan(events: Sequence[Event]) -> BatchPlan:
    """Sort a batch of events into a :class:`BatchPlan`.

    Examples
    --------
    >>> from daskflow.states import State
    >>> p = plan([StateChanged("f", None, State(StateType.RUNNING))])
    >>> list(p.flow_changes), len(p.changes)
    (['f'], 1)
    """
    batch = BatchPlan()
    flow_changes, task_changes, changes = batch.flow_changes, batch.task_changes, batch.changes
    for event in events:
        if isinstance(event, StateChanged):
            run_id = event.task_run_id
            if run_id is None:
                flow_changes.setdefault(event.flow_run_id, []).append(event)
            else:  # thousands a batch: no setdefault, which makes a list each time
                found = task_changes.get(run_id)
                if found is None:
                    task_changes[run_id] = [event]
                else:
                    found.append(event)
            changes.append(event)
        elif isinstance(event, TaskRunCreated):
            batch.task_runs[event.task_run_id] = event
        elif isinstance(event, LogEmitted):
            batch.logs.append(event)
        elif isinstance(event, FlowRunCreated):
            batch.flow_runs[event.flow_run_id] = event
        elif isinstance(event, ArtifactCreated | ArtifactUpdated):
            batch.artifacts.append(event)
        elif isinstance(event, TaskEdgesAdded):
            batch.edges.append(event)
        elif isinstance(event, ResourcesSampled):
            batch.samples.append(event)
    return batch


def merge_artifacts(
    stored: Mapping[str, ArtifactRow], events: Sequence[ArtifactCreated | ArtifactUpdated]
) -> dict[str, ArtifactRow]:
    """The rows of the artifacts ``events`` touch, after them.

    ``stored`` holds the rows already recorded of (at least) those artifacts.
    Content goes by timestamp, not by arrival: an update replaces the data
    (and the description, unless it has none) when it is not older than the
    row's ``updated``. An update can arrive before its artifact's creation (a
    task on a worker creates a progress artifact, the flow updates it at
    once, and the worker's batch comes later): it makes a row of its own,
    which the creation then completes, keeping the newer content. Creating
    an artifact that is recorded changes nothing it should not: the result
    is the same however often an event is applied.

    Examples
    --------
    >>> created = ArtifactCreated("f", None, "a1", "load", "progress", "0.0", None, 10.0)
    >>> updated = ArtifactUpdated("f", "t", "a1", "50.0", None, 11.0)
    >>> row = merge_artifacts({}, [updated, created])["a1"]
    >>> row.key, row.data, row.created, row.updated
    ('load', '50.0', 10.0, 11.0)
    """
    rows: dict[str, ArtifactRow] = {}
    for event in events:
        artifact_id = event.artifact_id
        row = rows.get(artifact_id) or stored.get(artifact_id)
        if isinstance(event, ArtifactCreated):
            created = ArtifactRow(
                artifact_id,
                event.key,
                event.type,
                event.data,
                event.description,
                event.timestamp,
                event.timestamp,
                event.flow_run_id,
                event.task_run_id,
            )
            if row is not None and row.updated > event.timestamp:  # a newer update came first
                created = replace(
                    created,
                    data=row.data,
                    description=row.description or event.description,
                    updated=row.updated,
                )
            rows[artifact_id] = created
        elif row is None:  # its creation has not arrived (yet)
            rows[artifact_id] = ArtifactRow(
                artifact_id,
                None,
                "progress",
                event.data,
                event.description,
                event.timestamp,
                event.timestamp,
                event.flow_run_id,
                event.task_run_id,
            )
        elif event.timestamp >= row.updated:
            description = row.description if event.description is None else event.description
            rows[artifact_id] = replace(
                row, data=event.data, description=description, updated=event.timestamp
            )
    return rows

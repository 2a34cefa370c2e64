"""A task run's plain history, kept in its own row instead of three transition rows.

Most task runs live the same short life: created PENDING, RUNNING once,
COMPLETED, with no message, error or details. Everything their three
transitions say is in their ``task_runs`` row already: ``created`` is the
PENDING time, ``start_time`` the RUNNING one, ``end_time`` the COMPLETED one,
``worker`` where both ran. Writing them again as three ``transitions`` rows was
most of what the SQL store spent on a run (a sync chain of 1,000 task runs
with the store on took 1.6x as long as with it off; 1.3x without them).

So the SQL store writes a task run whose whole plain life is in one batch
(:func:`implies_history`) with ``transitions_implied = 1`` and none of its
transitions, and reads them back from the row (:func:`implied_transitions`).
A later batch that changes such a run's status (a late transition of an
attempt whose worker died) first writes the three rows for real and clears
the mark, so the row never has to imply what it no longer says.
:meth:`~daskflow.store.base.RunStore.list_transitions` returns the same rows
either way: the in-memory store, which keeps every transition, is the model
the tests hold the SQL store to.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from daskflow.observers.events import StateChanged, TaskRunCreated
from daskflow.states import StateType

from .base import TransitionRow
from .fold import RunStatus

__all__ = ["IMPLIED", "implied_transitions", "implies_history", "transition_values"]

_PENDING, _RUNNING, _COMPLETED = StateType.PENDING, StateType.RUNNING, StateType.COMPLETED

#: The transitions a marked run's row implies, oldest first: their state, the row's
#: column that holds their time, their attempt (from attempt 1 on, the row's worker).
IMPLIED: tuple[tuple[StateType, str, int], ...] = (
    (_PENDING, "created", 0),
    (_RUNNING, "start_time", 1),
    (_COMPLETED, "end_time", 1),
)


def implies_history(created: TaskRunCreated, changes: Sequence[StateChanged]) -> bool:
    """Whether a new run's row can hold these state changes, its whole history so far.

    True for exactly PENDING at its creation time, then RUNNING and COMPLETED
    of attempt 1 on one worker, in time order, with no message, error or
    details: the three transitions :func:`implied_transitions` gives back.
    """
    if len(changes) != 3:
        return False
    pending, running, done = changes
    p, r, d = pending.state, running.state, done.state
    return (
        p.type is _PENDING
        and r.type is _RUNNING
        and d.type is _COMPLETED
        and p.timestamp == created.timestamp
        and p.timestamp <= r.timestamp <= d.timestamp
        and pending.attempt == 0
        and running.attempt == 1
        and done.attempt == 1
        and pending.worker is None
        and running.worker == done.worker
        and not (p.message or r.message or d.message)
        and not (pending.details or running.details or done.details)
        and p.error_type is None
        and r.error_type is None
        and d.error_type is None
        and d.error_message is None
        and d.traceback is None
    )


def implied_transitions(
    flow_run_id: str, task_run_id: str, created: float, status: RunStatus
) -> list[TransitionRow]:
    """The transitions a marked task run's row implies, oldest first.

    ``created`` and ``status`` are what the row holds: its creation time and
    its status columns (start and end times, worker).
    """
    # a marked run completed: its start and end times are set
    times: dict[str, Any] = {
        "created": created,
        "start_time": status.start_time,
        "end_time": status.end_time,
    }
    return [
        TransitionRow(flow_run_id, task_run_id, state, times[column], attempt)
        if not attempt
        else TransitionRow(flow_run_id, task_run_id, state, times[column], attempt, status.worker)
        for state, column, attempt in IMPLIED
    ]


def transition_values(row: TransitionRow) -> tuple[Any, ...]:
    """The ``transitions`` columns of an implied transition, in ``TRANSITION_COLUMNS`` order."""
    return (
        row.flow_run_id,
        row.task_run_id,
        row.state._value_,
        row.timestamp,
        row.attempt,
        row.worker,
        row.message,
        None,
        None,
        None,
        "{}",
    )

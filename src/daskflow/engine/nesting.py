"""Task runs started inside other task runs: how the flow run hears of them.

A task may call, submit or map other tasks (Prefect 3). Those *nested* runs
belong to the flow run of their parent task run, but the flow's process did
not create them: they are made where the parent runs, on a worker maybe.
So a nested run announces itself. Its :class:`~daskflow.engine.call.CallSpec`
names its parent (``parent``), and the attempt wrapper emits one
:data:`CREATED` event before anything else it reports, from wherever the run
runs, through the same path as its state transitions
(:mod:`daskflow.engine.emit`): the announcement travels in the same worker
batch, ahead of the run's first transition, so the flow run's runner always
knows the run before its states arrive.

A created event is the tuple ``(flow_run_id, task_run_id, "CREATED",
timestamp, task_name, run_name, map_index, tags, parent_task_run_id, key)``.
Runs that the flow function made itself never send one: the flow's process
recorded them as it created them, so this costs the flow nothing.

A nested run may run on another worker than its parent, whose events can
reach the flow's process after the parent's. So a parent's final event
says how many runs it started (``details[NESTED_RUNS]``): the flow run, at
its end, collects what workers still hold (as it does for its own runs
whose ends have not arrived) until it knows of that many.
"""

from __future__ import annotations

import time
from typing import Any

from daskflow.engine.emit import emit
from daskflow.engine.runs import TaskRun
from daskflow.states import State, StateType

__all__ = ["CREATED", "NESTED_RUNS", "announce", "created_events", "nested_run"]

#: The state field of a nested run's announcement.
CREATED = "CREATED"
#: The key of a parent's final event details: how many runs it started.
NESTED_RUNS = "nested_runs"


def announce(spec: Any, key: Any = None) -> None:
    """Tell the flow run that nested task run ``spec`` exists (see the module docstring)."""
    emit(
        (
            spec.flow_run_id,
            spec.task_run_id,
            CREATED,
            time.time(),
            spec.task.name,
            spec.run_name,
            spec.map_index,
            tuple(sorted(spec.task.options.tags)),
            spec.parent,
            key,
        )
    )


class _NestedTask:
    """What the flow's process knows of the task of a nested run: its name."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


def nested_run(event: tuple[Any, ...]) -> TaskRun:
    """The flow's record of the nested run a :data:`CREATED` event announces."""
    _, run_id, _, _, task_name, run_name, map_index, _, _, key = event
    return TaskRun(run_id, key, _NestedTask(task_name), run_name, map_index, None, [])


def created_events(flow_run_id: str, event: tuple[Any, ...]) -> list[Any]:
    """The observers' events of a nested run's creation: created, then PENDING."""
    # here, in the flow's process: a worker announcing nested runs never needs the events
    from daskflow.observers.events import StateChanged, TaskRunCreated

    _, run_id, _, when, task_name, run_name, map_index, tags, parent, key = event
    return [
        TaskRunCreated(
            run_id, flow_run_id, task_name, run_name, map_index, frozenset(tags), key, when, parent
        ),
        StateChanged(flow_run_id, run_id, State(StateType.PENDING, when)),
    ]

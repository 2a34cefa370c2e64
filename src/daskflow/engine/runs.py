"""The client's record of one task run, and how its state is read.

A :class:`TaskRun` is created when a flow calls a task. It holds the
:class:`~daskflow.engine.call.CallSpec`, the runs it depends on, and, once
submitted, the Dask future. Its *final* state is read from that future,
which is the authority: a value means COMPLETED, a ``TaskFailure`` value the
failed state inside it, a Dask error ``CRASHED`` (or ``UPSTREAM_FAILED`` when
the error came from a dependency), a cancelled future ``CANCELLED``. Events
from the worker add the details (attempts, worker, times) and the live
RUNNING/RETRYING states.
"""

from __future__ import annotations

import threading
from typing import Any

from daskflow.engine.call import CallSpec
from daskflow.states import StateType

__all__ = ["TaskRun"]


class TaskRun:
    """One task run as the client tracks it.

    Attributes
    ----------
    id, key
        The task run id and its Dask key.
    task
        The ``Task`` called.
    spec
        The call shipped to the worker (None until a deferred call is built).
    upstream
        The runs whose values fill the spec's slots, in slot order.
    future
        The Dask future once submitted (distributed backends).
    value
        The result in the sync backend (a value or a ``TaskFailure``).
    latest, attempt, worker, size, final_event
        What the events said last.
    handled
        True once user code looked at this run's outcome, so a failure here
        does not by itself fail the flow.
    handle
        A weak reference to the user's ``TaskFuture`` of a submitted run, or
        None: once it is dead, only runs already created can read this run's
        value, which lets a linear chain be fused (:mod:`.lowering`).
    """

    __slots__ = (
        "attempt",
        "deferred",
        "failure",
        "final_event",
        "future",
        "handle",
        "handled",
        "id",
        "key",
        "latest",
        "local_state",
        "map_index",
        "run_name",
        "size",
        "spec",
        "started",
        "task",
        "upstream",
        "value",
        "worker",
    )

    def __init__(
        self,
        id: str,
        key: Any,
        task: Any,
        run_name: str,
        map_index: int | None,
        spec: CallSpec | None,
        upstream: list[TaskRun],
    ) -> None:
        self.id = id
        self.key = key
        self.task = task
        self.run_name = run_name
        self.map_index = map_index
        self.spec = spec
        self.upstream = upstream
        self.future: Any = None
        self.value: Any = _UNSET
        self.local_state: Any = None
        self.failure: Any = None
        self.latest = StateType.PENDING
        self.attempt = 0
        self.worker: str | None = None
        self.size: int | None = None
        self.started: float | None = None
        self.final_event: tuple[Any, ...] | None = None
        self.handled = False
        self.handle: Any = None
        # set for calls whose arguments wait on a dynamic map; None otherwise
        self.deferred: threading.Event | None = None

    @property
    def has_value(self) -> bool:
        return self.value is not _UNSET

    def __repr__(self) -> str:
        return f"<TaskRun {self.run_name} {self.latest.value}>"


class _Unset:
    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Any = _Unset()

"""The task run executing in this context, wherever it executes.

The attempt wrapper (:func:`daskflow.engine.attempt.run_task`) sets
:data:`current_task_run` to a :class:`TaskRunContext` around each task run,
on the worker that runs it (also for each element of a batched chunk or a
fused chain, which go through the wrapper one by one). Everything in it
comes from what the wrapper already holds (the run's ``CallSpec``, the bound
arguments, the attempt number): setting it ships nothing and asks nothing.
Run logs, ``get_run_logger``, :mod:`daskflow.runtime` and
:func:`daskflow.is_cancelled` read it.
"""

from __future__ import annotations

import contextvars
import inspect
from typing import Any

__all__ = ["TaskRunContext", "current_task_run"]


class TaskRunContext:
    """The task run this code runs in, as Prefect's ``TaskRunContext`` shows it.

    Attributes
    ----------
    spec
        The run's :class:`~daskflow.engine.call.CallSpec`.
    attempt
        The attempt running now: 1 on the first (0 before the first starts).
    nested
        The runner of the task runs this one started (a
        :class:`~daskflow.engine.nested.NestedRunner`), made when the first
        is; None until then.
    """

    __slots__ = ("args", "attempt", "kwargs", "nested", "spec")

    def __init__(
        self, spec: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> None:
        self.spec = spec
        self.args = args
        self.kwargs = kwargs
        self.attempt = 0
        self.nested: Any = None

    @classmethod
    def get(cls) -> TaskRunContext | None:
        """The task run context of the code calling it, or None outside a task run."""
        return current_task_run.get()

    @property
    def flow_run_id(self) -> str | None:
        """The id of the flow run this task run belongs to."""
        return self.spec.flow_run_id

    @property
    def task_run_id(self) -> str:
        return self.spec.task_run_id

    @property
    def task(self) -> Any:
        """The :class:`~daskflow.Task` being run."""
        return self.spec.task

    @property
    def task_name(self) -> str:
        return self.spec.task.name

    @property
    def run_name(self) -> str:
        return self.spec.run_name

    @property
    def tags(self) -> frozenset[str]:
        return self.spec.task.options.tags

    @property
    def parameters(self) -> dict[str, Any]:
        """The run's arguments by parameter name (bound when asked, not before)."""
        try:
            bound = inspect.signature(self.spec.task.fn).bind_partial(
                *self.args, **(self.kwargs or {})
            )
        except (TypeError, ValueError):
            return {}
        return dict(bound.arguments)

    def __repr__(self) -> str:
        return f"TaskRunContext({self.run_name!r}, attempt={self.attempt})"


#: The task run executing in this context (None outside one).
current_task_run: contextvars.ContextVar[TaskRunContext | None] = contextvars.ContextVar(
    "daskflow_task_run", default=None
)

"""``daskflow.runtime.task_run``: the task run this code runs in.

Its attributes are computed when read (module ``__getattr__``), as in Prefect.

Everything comes from the attempt wrapper's own context
(:class:`~daskflow.engine.task_context.TaskRunContext`): reading it asks no
other process. In a flow function, outside its tasks, every attribute is None.

Examples
--------
>>> from daskflow.runtime import task_run
>>> task_run.attempt is None  # outside a task run
True
"""

from __future__ import annotations

from typing import Any

_FROM_CONTEXT = {
    "id": "task_run_id",
    "name": "run_name",
    "task_name": "task_name",
    "attempt": "attempt",
    "run_count": "attempt",
    "tags": "tags",
    "parameters": "parameters",
    "flow_run_id": "flow_run_id",
}

__all__ = sorted(_FROM_CONTEXT)


def __getattr__(name: str) -> Any:
    attribute = _FROM_CONTEXT.get(name)
    if attribute is None:
        raise AttributeError(f"daskflow.runtime.task_run has no attribute {name!r}")
    from daskflow.engine.task_context import current_task_run

    context = current_task_run.get()
    if context is None:
        return None
    value = getattr(context, attribute)
    return set(value) if name == "tags" else value


def __dir__() -> list[str]:
    return sorted(_FROM_CONTEXT)

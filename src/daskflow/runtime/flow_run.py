"""``daskflow.runtime.flow_run``: the flow run this code runs in.

Its attributes are computed when read (module ``__getattr__``), as in Prefect.

Examples
--------
>>> from daskflow.runtime import flow_run
>>> flow_run.id is None  # outside a run
True
"""

from __future__ import annotations

from typing import Any

#: The attributes this module answers.
ATTRIBUTES = ("flow_name", "id", "name", "parameters", "parent_flow_run_id", "scheduled_start_time")

__all__ = list(ATTRIBUTES)


def current_id() -> str | None:
    """The id of the flow run this code runs in (in a task run or a flow function), or None."""
    from daskflow.engine.current import current_runner
    from daskflow.engine.task_context import current_task_run

    context = current_task_run.get()
    if context is not None:
        return context.flow_run_id
    runner = current_runner()
    return runner.flow_run_id if runner is not None else None


def _fact(name: str) -> Any:
    from daskflow.engine.flow_facts import facts_of

    flow_run_id = current_id()
    if flow_run_id is None:
        return None
    if name == "id":
        return flow_run_id
    facts = facts_of(flow_run_id)
    if facts is not None:
        return getattr(facts, name)
    if name == "flow_name":  # a spec that names its flow (it has hooks) still knows this
        from daskflow.engine.task_context import current_task_run

        context = current_task_run.get()
        return context.spec.flow_name if context is not None else None
    return None


def __getattr__(name: str) -> Any:
    if name in ATTRIBUTES:
        return _fact(name)
    raise AttributeError(f"daskflow.runtime.flow_run has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(ATTRIBUTES)

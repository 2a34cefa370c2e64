"""The run contexts, at Prefect 3's module path: ``TaskRunContext``, ``FlowRunContext``.

``TaskRunContext.get()`` is the task run the calling code runs in (None
outside one); ``FlowRunContext.get()`` is the flow run whose *flow
function* calls it (None outside one, and inside a task run: a task reads
its flow run through :mod:`daskflow.runtime` instead, which also works on
remote workers). ``tags`` is :func:`daskflow.tags`, where Prefect also has it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from daskflow.api.tags import tags
from daskflow.engine.task_context import TaskRunContext

__all__ = ["FlowRunContext", "TaskRunContext", "tags"]


@dataclass(frozen=True)
class FlowRunContext:
    """The flow run a flow function runs in.

    Attributes
    ----------
    flow_run
        Its facts: ``id``, ``name``, ``flow_name``, ``parameters``,
        ``scheduled_start_time``, ``parent_flow_run_id``.
    """

    flow_run: Any

    @property
    def flow_run_id(self) -> str:
        return self.flow_run.id

    @property
    def parameters(self) -> dict[str, Any] | None:
        return self.flow_run.parameters

    @classmethod
    def get(cls) -> FlowRunContext | None:
        """The context of the flow run whose function calls it, or None."""
        from daskflow.engine.current import current_runner
        from daskflow.engine.flow_facts import facts_of

        if TaskRunContext.get() is not None:
            return None
        runner = current_runner()
        facts = facts_of(runner.flow_run_id) if runner is not None else None
        return cls(facts) if facts is not None else None

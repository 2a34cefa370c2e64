"""The flow runs of this process: the one code runs inside, and those hearing events.

Two small registries that code below and beside the runner needs without
importing it (the run logger, artifacts, the backends' event routing):

- :func:`current_runner`: the flow run the calling code runs inside (a
  context variable, so threads and asyncio tasks each see their own);
- :func:`route`: worker events of a flow run, handed to the runner that
  listens for them (:func:`listen`), or dropped once it ended.
"""

from __future__ import annotations

import contextlib
import contextvars
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from daskflow.engine.runner import FlowRunner

__all__ = ["current_runner", "listen", "route", "running", "stop_listening", "weak_sink"]

# Weak: asyncio copies the context into callbacks that outlive the run (a reader
# registered for a connection opened during the flow), which must not keep its
# task runs alive.
_current: contextvars.ContextVar[weakref.ref[FlowRunner] | None] = contextvars.ContextVar(
    "daskflow_flow_runner", default=None
)
_live: dict[str, FlowRunner] = {}


def current_runner() -> FlowRunner | None:
    """The flow run this code runs inside, or None."""
    ref = _current.get()
    return ref() if ref is not None else None


@contextlib.contextmanager
def running(runner: FlowRunner) -> Iterator[None]:
    """Make ``runner`` the current flow run of this context, for the block."""
    token = _current.set(weakref.ref(runner))
    try:
        yield
    finally:
        _current.reset(token)


def listen(runner: FlowRunner) -> None:
    """Hand the worker events of ``runner``'s flow run to it from now on."""
    _live[runner.flow_run_id] = runner


def stop_listening(runner: FlowRunner) -> None:
    _live.pop(runner.flow_run_id, None)


def route(flow_run_id: str, events: list[tuple[Any, ...]], client: Any) -> None:
    """Hand worker events to their live flow run (events of ended runs are dropped).

    Several clients of one scheduler all receive every batch; only the one the
    flow run submits through delivers to it.
    """
    runner = _live.get(flow_run_id)
    if runner is not None and client is runner.backend.client:
        runner.on_task_events(events)


def weak_sink(runner: FlowRunner) -> Callable[[tuple[Any, ...]], None]:
    """``runner.on_task_events`` for one event, without keeping the runner alive."""
    ref = weakref.ref(runner)

    def sink(event: tuple[Any, ...]) -> None:
        live = ref()
        if live is not None:
            live.on_task_events([event])

    return sink

"""Calling ``async def`` tasks and flows, as in Prefect 3.

- An async flow called where an event loop runs, or outside any flow, returns
  a coroutine: ``asyncio.run(etl())`` in a script, ``await etl()`` in a
  notebook or another coroutine. Called from a sync flow's body (no loop
  runs there), it runs at once as a subflow and returns its value.
- An async task called in a running loop (an async flow's body) returns a
  coroutine: ``await extract(day)``; called from sync code (a sync flow's
  body) it runs and returns its value. ``.submit``/``.map`` return futures
  either way, and those are awaitable (``asyncio.gather`` takes them).

The flow run itself goes through the one engine (:mod:`daskflow.api.flow_run`)
on a thread of its own, while its body runs on the caller's loop
(:func:`daskflow.engine.aio.run_body`): a slow step of the engine (starting
the cluster, settling the runs) never blocks that loop, and the body's
``await`` of one task run lets other coroutines of the loop go on.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from daskflow.engine.aio import caller_loop, wait_run, wants_coroutine
from daskflow.engine.current import current_runner

if TYPE_CHECKING:
    from daskflow.api.flow import Flow
    from daskflow.api.task import Task

__all__ = ["call_flow", "call_task", "in_thread", "wants_coroutine"]


def call_flow(
    flow: Flow[Any, Any], args: Sequence[Any], kwargs: dict[str, Any], state: bool
) -> Any:
    """Call an async flow: a coroutine, or its value inside a sync flow's body."""
    from daskflow.api.flow_run import run_flow

    if current_runner() is not None and not wants_coroutine(in_flow=True):
        # a sync flow's body: run it now, its body on a loop of its own (not the one
        # awaiting the parent, which waits for this call to return)
        context = contextvars.copy_context()
        context.run(caller_loop.set, None)
        return context.run(run_flow, flow, args, kwargs, state)
    return _run_flow(flow, args, kwargs, state)


async def _run_flow(
    flow: Flow[Any, Any], args: Sequence[Any], kwargs: dict[str, Any], state: bool
) -> Any:
    from daskflow.api.flow_run import run_flow

    caller_loop.set(asyncio.get_running_loop())  # this coroutine's context only
    return await in_thread(run_flow, flow, args, kwargs, state)


async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` on a new thread, in a copy of this context, awaited.

    A thread of its own rather than the loop's executor: each flow run waits
    on its subflows, and nested async subflows must never queue behind a
    bounded pool of threads all waiting on them.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Any] = loop.create_future()
    context = contextvars.copy_context()

    def settle(value: Any, error: BaseException | None) -> None:
        if done.cancelled():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(value)

    def target() -> None:
        try:
            value = context.run(fn, *args)
        except BaseException as exc:
            loop.call_soon_threadsafe(settle, None, exc)
        else:
            loop.call_soon_threadsafe(settle, value, None)

    name = getattr(fn, "__name__", "call")
    threading.Thread(target=target, name=f"daskflow-{name}", daemon=True).start()
    return await done


def call_task(task: Task[Any, Any], args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    """Call an async task where code awaits it: a coroutine giving its value."""
    return _run_task(task, args, kwargs)


async def _run_task(task: Task[Any, Any], args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    runner = current_runner()
    if runner is None:
        from daskflow.api import bare

        if not bare.tracked():
            return await task.fn(*args, **kwargs)
        return bare.call(task, args, kwargs)  # here, as for a sync task (no cluster starts)
    run = task._create(runner, args, kwargs, None)
    return await wait_run(runner, run)

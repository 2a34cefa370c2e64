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
import contextlib
import contextvars
import threading
import uuid
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


#: Seconds a cancelled ``await flow()`` waits for its run to be recorded as ended.
CANCEL_GRACE = 10.0


async def _run_flow(
    flow: Flow[Any, Any], args: Sequence[Any], kwargs: dict[str, Any], state: bool
) -> Any:
    """Run the flow on an engine thread while its body runs on this loop.

    Cancelled (Ctrl-C in ``asyncio.run``, a timeout around the ``await``),
    the flow run is cancelled: its task runs are cancelled on the cluster,
    its body is cancelled, and it is recorded ``CANCELLED`` before the
    cancellation goes on (within :data:`CANCEL_GRACE`), so that nothing is
    left running or unrecorded as the program ends.
    """
    from daskflow.api.flow_run import run_flow
    from daskflow.engine.cancellation import cancel_flow_run

    caller_loop.set(asyncio.get_running_loop())  # this coroutine's context only
    flow_run_id = uuid.uuid4().hex
    run = in_thread(run_flow, flow, args, kwargs, state, None, None, None, flow_run_id)
    try:
        return await asyncio.shield(run)
    except asyncio.CancelledError:
        cancel_flow_run(flow_run_id, "the code awaiting the flow run was cancelled")
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(run, CANCEL_GRACE)
        raise


def in_thread(fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
    """``fn(*args)`` on a new thread, in a copy of this context: a future of its value.

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
            value, error = context.run(fn, *args), None
        except BaseException as exc:
            value, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            loop.call_soon_threadsafe(settle, value, error)

    name = getattr(fn, "__name__", "call")
    threading.Thread(target=target, name=f"daskflow-{name}", daemon=True).start()
    return done


def call_task(
    task: Task[Any, Any],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    wait_for: Sequence[Any] | None = None,
    return_state: bool = False,
) -> Any:
    """Call an async task where code awaits it: a coroutine giving its value (or State)."""
    return _run_task(task, args, kwargs, wait_for, return_state)


async def _run_task(
    task: Task[Any, Any],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    wait_for: Sequence[Any] | None,
    return_state: bool,
) -> Any:
    runner = current_runner()
    if runner is None:
        from daskflow.api import bare

        if not bare.tracked():
            return await task.fn(*args, **kwargs)
        # here, as for a sync task (no cluster starts)
        return bare.call(task._as_called(None), args, kwargs, wait_for, return_state)
    run = task._as_called(runner)._create(runner, args, kwargs, wait_for)
    if return_state:
        import asyncio

        return await asyncio.to_thread(runner.outcome, run)
    return await wait_run(runner, run)

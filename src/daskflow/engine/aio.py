"""``async def`` tasks and flows: where a coroutine runs, and how async code waits.

There is one engine. An async task run goes through the same runner, attempt
wrapper, retries, caching, hooks and events as a sync one; only two things
differ, and both live here:

- **the call**: the attempt wrapper calls the task's function, gets a
  coroutine, and runs it to the end (:func:`run_coroutine`) on an event loop
  of the thread the attempt runs on — one loop per worker thread, made once
  and reused, so a trivial async task costs no loop set-up (``asyncio.run``
  per call would cost ~0.3 ms). A ``timeout_seconds`` cancels the coroutine at
  its deadline (``asyncio.wait_for``): its ``finally`` blocks run, unlike
  blocking code in a thread, which can only be abandoned.
- **side by side**: the elements of a batched map of an async task (one
  chunk, one Dask task) each go through the attempt wrapper on a thread of a
  pool the worker process keeps (:func:`run_side_by_side`), so their waits
  overlap: a chunk of ten calls that each wait 10 ms takes about 10 ms.
- **the wait**: code in a running event loop (an async flow's body, a
  notebook cell) awaits task runs (:func:`wait_run`) without blocking the
  loop: the runner's done callback resolves an asyncio future, so
  ``asyncio.gather`` over a thousand task runs needs no thread each.

An async flow's body runs on the event loop of the code that awaited the
flow (``asyncio.run``, Jupyter's loop), while the flow run's engine steps
(cluster, store, settling, hooks) run on an executor thread, exactly as for a
sync flow: :func:`run_body` hands the body from that thread to the loop, in
the engine thread's context, so the body sees its flow run as current.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from daskflow.engine.countdown import after_all
from daskflow.engine.current import current_runner

if TYPE_CHECKING:
    from daskflow.engine.runner import FlowRunner
    from daskflow.engine.runs import TaskRun

__all__ = [
    "async_body",
    "caller_loop",
    "in_running_loop",
    "run_body",
    "run_coroutine",
    "run_side_by_side",
    "wait_run",
    "wait_runs",
    "wants_coroutine",
]

#: The event loop that awaited the async flow being run in this context.
caller_loop: contextvars.ContextVar[asyncio.AbstractEventLoop | None] = contextvars.ContextVar(
    "daskflow_caller_loop", default=None
)

#: True in the body of an async flow: an async task called there gives a coroutine.
async_body: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "daskflow_async_body", default=False
)

_loops = threading.local()


def wants_coroutine(in_flow: bool) -> bool:
    """Whether calling an async task or flow here should give a coroutine to await.

    In a flow run: where its body is async (a sync flow's body gets values,
    even in a notebook, whose cell runs inside an event loop). Outside any
    flow: where an event loop runs (a tracked bare call is awaited there).
    """
    return async_body.get() if in_flow else in_running_loop()


def in_running_loop() -> bool:
    """Whether this thread runs an event loop now (async code calls us)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _thread_loop() -> asyncio.AbstractEventLoop:
    loop: asyncio.AbstractEventLoop | None = getattr(_loops, "loop", None)
    if loop is None or loop.is_closed():
        loop = _loops.loop = asyncio.new_event_loop()
    return loop


def run_coroutine(
    coro: Coroutine[Any, Any, Any],
    timeout: float | None,
    on_timeout: Callable[[], BaseException],
) -> Any:
    """Run ``coro`` to its end here; cancel it and raise ``on_timeout()`` at ``timeout``."""

    async def bounded() -> Any:
        if timeout is None:
            return await coro
        try:
            return await asyncio.wait_for(coro, timeout)
        except TimeoutError:
            raise on_timeout() from None

    return _run_here(bounded())


def _run_here(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coro`` to its end from sync code on this thread: its value.

    On this thread's own loop; where a loop already runs in this thread (an
    async flow on ``cluster="sync"``, a sync flow called from async code), on
    a helper thread's, in a copy of this context (the current run, its sink).
    """
    if not in_running_loop():
        return _thread_loop().run_until_complete(coro)
    box: dict[str, Any] = {}
    context = contextvars.copy_context()

    def target() -> None:
        try:
            box["value"] = context.run(asyncio.run, coro)
        except BaseException as exc:
            box["error"] = exc

    helper = threading.Thread(target=target, name="daskflow-async", daemon=True)
    helper.start()
    helper.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


async def wait_run(runner: FlowRunner, run: TaskRun, raise_on_failure: bool = True) -> Any:
    """Await one task run's value (or its exception) without blocking the loop."""
    await _done(runner, [run])
    return runner.result(run, raise_on_failure=raise_on_failure)


async def wait_runs(runner: FlowRunner, runs: list[TaskRun]) -> list[Any]:
    """Await the values of many task runs (gathered from the cluster in one call)."""
    await _done(runner, runs)
    return runner.results(runs)


async def _done(runner: FlowRunner, runs: list[TaskRun]) -> None:
    if not runs:
        return
    loop = asyncio.get_running_loop()
    finished: asyncio.Future[None] = loop.create_future()
    one_done = after_all(len(runs), lambda: loop.call_soon_threadsafe(_resolve, finished))
    for run in runs:
        runner.when_done(run, one_done)
    await finished


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def run_body(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run an async flow's body on the loop that awaited the flow; its value.

    Called on the flow run's engine thread, which waits; the body runs as a
    task of the caller's loop in a copy of this thread's context (the flow
    run is current there). Without a caller's loop (a sync flow ran an async
    subflow), the body runs on this thread's own loop.
    """
    loop = caller_loop.get()
    token = async_body.set(True)
    try:
        if loop is None or loop.is_closed():
            return _run_here(coro)
        context = contextvars.copy_context()
    finally:
        async_body.reset(token)
    finished = threading.Event()
    box: dict[str, Any] = {}

    def ended(task: asyncio.Task[Any]) -> None:
        box["task"] = task
        finished.set()

    def start() -> None:
        box["body"] = task = loop.create_task(coro, context=context)
        task.add_done_callback(ended)

    def cancel() -> None:  # the flow run was cancelled: so is its body
        body = box.get("body")
        if body is not None:
            body.cancel()

    loop.call_soon_threadsafe(start)
    runner = current_runner()
    stop = getattr(runner, "token", None)
    undo = stop.on_cancel(lambda: loop.call_soon_threadsafe(cancel)) if stop else None
    deadline = getattr(runner, "deadline", None)  # the flow's timeout_seconds
    timed_out = False
    try:
        if not finished.wait(None if deadline is None else max(0.0, deadline - time.time())):
            timed_out = True
            loop.call_soon_threadsafe(cancel)  # the body's finally blocks run
            finished.wait()
    finally:
        if undo is not None:
            undo()
    task = box["task"]
    if timed_out and runner is not None:
        from daskflow.errors import FlowRunTimeout

        raise FlowRunTimeout(runner.flow_name or runner.flow_run_id, runner.timeout or 0.0)
    if task.cancelled():
        from daskflow.errors import CancelledRunError

        raise CancelledRunError("the async flow's body", "its flow run was cancelled")
    return task.result()


#: Threads of a worker process that run the elements of async chunks side by side.
SIDE_BY_SIDE_THREADS = 128
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def run_side_by_side(fn: Callable[..., Any], calls: Sequence[Sequence[Any]]) -> list[Any]:
    """``[fn(*call) for call in calls]``, the calls at the same time; in order.

    Each on a thread of the process's pool (which keeps its event loops), in
    a copy of this context (the worker its events go to).
    """
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(SIDE_BY_SIDE_THREADS, thread_name_prefix="daskflow-async")
        pool = _pool
    futures = [pool.submit(contextvars.copy_context().run, fn, *call) for call in calls]
    return [future.result() for future in futures]

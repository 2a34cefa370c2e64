"""Ending a call at its deadline, even when the code blocks.

Python cannot interrupt a thread, and signals only reach the main thread
(tasks run in worker threads). So the call runs on a helper thread and the
caller stops waiting at the deadline: the run is recorded timed out and the
flow moves on, while code that blocks keeps running in the background until
it returns. This is documented behaviour, the same trade-off Dask makes for
cancelled tasks. Code that *can* stop in time — a shell task killing its
process — reads the deadline from :data:`attempt_deadline`.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from daskflow.errors import CancelledRunError

if TYPE_CHECKING:
    from daskflow.engine.cancellation import CancelToken

__all__ = ["attempt_deadline", "call_with_timeout"]

#: ``time.monotonic()`` at which the current attempt times out, or None. Code
#: that can stop cleanly (a shell command it can kill) reads it.
attempt_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "daskflow_attempt_deadline", default=None
)


def call_with_timeout(
    fn: Callable[..., Any],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    seconds: float,
    on_timeout: Callable[[], BaseException],
    stop: CancelToken | None = None,
) -> Any:
    """``fn(*args, **kwargs)``, or raise ``on_timeout()`` after ``seconds``.

    The helper thread runs in a copy of the caller's context, so context
    variables (the current flow run, the worker) are seen there too. When
    ``stop`` is cancelled first, stop waiting at once and raise
    :class:`~daskflow.errors.CancelledRunError`.
    """
    box: dict[str, Any] = {}
    done = threading.Event()
    context = contextvars.copy_context()

    def target() -> None:
        try:
            box["value"] = context.run(fn, *args, **kwargs)
        except BaseException as exc:
            box["error"] = exc
        finally:
            done.set()

    name = getattr(fn, "__name__", "call")
    threading.Thread(target=target, name=f"daskflow-timeout-{name}", daemon=True).start()
    undo = stop.on_cancel(done.set) if stop is not None else None
    try:
        finished = done.wait(seconds)
    finally:
        if undo is not None:
            undo()
    if stop is not None and stop.cancelled and "value" not in box and "error" not in box:
        raise CancelledRunError(f"flow run {stop.flow_run_id}", stop.reason or "cancelled")
    if not finished:
        raise on_timeout()
    if "error" in box:
        raise box["error"]
    return box["value"]

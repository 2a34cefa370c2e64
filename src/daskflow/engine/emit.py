"""Getting state transitions out of the place a task runs, in batches.

The attempt wrapper calls :func:`emit` for every transition. Where the event
goes depends on where the wrapper runs:

- **On a Dask worker** the event joins a per-worker buffer. Final states are
  sent at once; RUNNING/RETRYING wait up to ``daskflow.events.flush-interval``
  so a busy worker sends one message for many transitions. The buffer is
  drained on the worker's event loop into ``Worker.log_event(TOPIC, batch)``,
  which travels on the same ordered stream as the task's own completion, so
  the client always holds a run's final events before its future is done.
- **In-process without a worker** (``cluster="sync"``) a sink installed with
  :func:`local_sink` receives each event directly.

An event is a plain tuple (msgpack-able, cheap):
``(flow_run_id, task_run_id, state_type, timestamp, attempt, worker,
message, error_type, error_message, traceback, size)``.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["TOPIC", "emit", "local_sink"]

TOPIC = "daskflow-events"

EventTuple = tuple[Any, ...]
Sink = Callable[[EventTuple], None]

_sink: contextvars.ContextVar[Sink | None] = contextvars.ContextVar("daskflow_sink", default=None)


@contextlib.contextmanager
def local_sink(sink: Sink) -> Iterator[None]:
    """Send events emitted in this context to ``sink`` instead of a worker."""
    token = _sink.set(sink)
    try:
        yield
    finally:
        _sink.reset(token)


def current_worker() -> Any:
    """The Dask worker running this thread, or None."""
    from distributed.worker import get_worker

    try:
        return get_worker()
    except ValueError:
        return None


def worker_address() -> str | None:
    worker = current_worker()
    return worker.address if worker is not None else None


class _WorkerBuffer:
    """Events of one worker waiting to be sent; drained on the worker's loop."""

    def __init__(self, worker: Any) -> None:
        from daskflow import config

        self._worker = worker
        self._queue: deque[EventTuple] = deque()
        self._timer_armed = False
        self._interval = config.get_seconds("events.flush-interval")

    def add(self, event: EventTuple, urgent: bool) -> None:
        self._queue.append(event)
        loop = self._worker.loop
        if urgent:
            loop.add_callback(self._flush)
        elif not self._timer_armed:
            self._timer_armed = True
            loop.add_callback(self._arm)

    def _arm(self) -> None:
        self._worker.loop.call_later(self._interval, self._on_timer)

    def _on_timer(self) -> None:
        self._timer_armed = False
        self._flush()

    def _flush(self) -> None:
        queue = self._queue
        batch = []
        while queue:
            batch.append(queue.popleft())
        if batch:
            self._worker.log_event(TOPIC, batch)


def emit(event: EventTuple, urgent: bool) -> None:
    """Send one transition towards the client (see the module docstring)."""
    sink = _sink.get()
    if sink is not None:
        sink(event)
        return
    worker = current_worker()
    if worker is None:
        return
    buffer = getattr(worker, "_daskflow_events", None)
    if buffer is None:
        buffer = worker._daskflow_events = _WorkerBuffer(worker)
    buffer.add(event, urgent)

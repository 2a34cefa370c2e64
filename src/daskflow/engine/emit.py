"""Getting state transitions out of the place a task runs, in batches.

The attempt wrapper calls :func:`emit` for every transition. Where the event
goes depends on where the wrapper runs:

- **On a Dask worker** the event joins a per-worker buffer, sent at most
  ``daskflow.events.flush-interval`` later with everything else queued, as
  one numbered ``Worker.log_event(TOPIC, batch)``: a busy worker sends one
  message for many transitions, and the worker's event loop wakes once per
  interval, not once per task (per-task wake-ups cost CPU-bound tasks a few
  per cent on a small machine). A worker that falls idle as a run ends (no
  other task executing or ready) sends at once instead: the last runs of a
  flow reach the client with their results, so a short flow run does not
  wait an interval. When a flow run ends without every final state in hand,
  the client collects what is still queued with :func:`drain_worker_events`
  and waits for the batches already on their way, so observers see every
  transition. A worker that died is not waited for: what it had not sent
  died with it, and the client rebuilds those attempts from what the
  scheduler saw (:mod:`daskflow.engine.worker_loss`).
- **In-process without a worker** (``cluster="sync"``) a sink installed with
  :func:`local_sink` receives each event directly.

An event is a plain tuple:
``(flow_run_id, task_run_id, state_type, timestamp, attempt, worker,
message, error_type, error_message, traceback, size, details)`` (``details``:
a dict, e.g. where the result was stored, or None); log records
(:mod:`daskflow.engine.run_logs`) and artifacts
(:mod:`daskflow.engine.run_artifacts`) travel the same way as tuples of their
own, with ``"LOG"`` or ``"ARTIFACT..."`` for a state. A batch travels as one
pickle (:func:`pack_events`): the scheduler relays it as bytes instead of
decoding thousands of tuples and encoding them again for each client, and the
logs of recent messages it keeps for debugging hold one bytes object per
batch.
"""

from __future__ import annotations

import contextvars
import functools
import pickle
import time
from collections import deque
from collections.abc import Callable
from typing import Any, cast

from daskflow.states import State, StateType

__all__ = [
    "STATE_TYPES",
    "TOPIC",
    "drain_worker_events",
    "emit",
    "event_state",
    "local_sink",
    "pack_events",
    "trim_event_log",
    "unpack_events",
]

TOPIC = "daskflow-events"

#: Seconds between two early sends of an idle worker: a worker that runs many
#: short tasks one after another is idle between each two, and must not send
#: a message per task.
IDLE_SEND_GAP = 0.025

#: Batches of events the scheduler keeps in its log of :data:`TOPIC` (for
#: ``Client.get_events``): none, subscribers get every batch as it comes, and a
#: batch of a busy cluster holds thousands of events.
KEPT_BATCHES = 0

EventTuple = tuple[Any, ...]
Sink = Callable[[EventTuple], None]

_sink: contextvars.ContextVar[Sink | None] = contextvars.ContextVar("daskflow_sink", default=None)


class local_sink:
    """Send events emitted in this context to ``sink`` instead of a worker.

    A class rather than a generator context manager: ``cluster="sync"``
    enters one per task run.
    """

    __slots__ = ("_sink", "_token")

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self._token: contextvars.Token[Sink | None] | None = None

    def __enter__(self) -> None:
        self._token = _sink.set(self._sink)

    def __exit__(self, *exc: object) -> None:
        assert self._token is not None
        _sink.reset(self._token)


def current_worker() -> Any:
    """The Dask worker running this thread, or None.

    Reads the context variable behind ``distributed.get_worker`` where this
    version of distributed has one: ``get_worker()`` raises (and here catches)
    a ``ValueError`` outside a worker, which every task run under
    ``cluster="sync"`` paid for several times.
    """
    return (_find_worker or _worker_lookup())()


def _worker_lookup() -> Callable[[], Any]:
    """How :func:`current_worker` finds the worker (distributed is imported on first use)."""
    global _find_worker
    from distributed import worker

    variable = getattr(worker, "_worker_cvar", None)
    if isinstance(variable, contextvars.ContextVar):
        _find_worker = functools.partial(variable.get, None)
    else:  # another distributed: its public function
        _find_worker = _get_worker
    return _find_worker


def _get_worker() -> Any:
    from distributed.worker import get_worker

    try:
        return get_worker()
    except ValueError:
        return None


_find_worker: Callable[[], Any] | None = None


def worker_address() -> str | None:
    worker = current_worker()
    return worker.address if worker is not None else None


class _WorkerBuffer:
    """Events of one worker waiting to be sent; drained on the worker's loop.

    Batches are numbered, so the client can tell when it holds every batch
    a worker sent (see :func:`drain_worker_events`).
    """

    def __init__(self, worker: Any) -> None:
        from daskflow import config

        self._worker = worker
        self._queue: deque[EventTuple] = deque()
        self._timer_armed = False
        self._interval = config.get_seconds("events.flush-interval")
        self.sent = 0  # batches sent so far
        self._last_send = 0.0

    def add(self, event: EventTuple, final: bool = False) -> None:
        self._queue.append(event)
        if final and self._idle() and time.monotonic() - self._last_send >= IDLE_SEND_GAP:
            self._last_send = time.monotonic()  # at most one early send per gap
            self._worker.loop.add_callback(self._send)
        elif not self._timer_armed:  # one loop wake-up per interval, not per event
            self._timer_armed = True
            self._worker.loop.add_callback(self._arm)

    def _idle(self) -> bool:
        """Nothing else to run here: the calling task is the only one executing."""
        try:
            state = self._worker.state
            return state.executing_count <= 1 and not state.ready
        except AttributeError:  # a worker without the state machine we know
            return False

    def _arm(self) -> None:
        self._worker.loop.call_later(self._interval, self._on_timer)

    def _on_timer(self) -> None:
        self._timer_armed = False
        self._send()

    def _send(self) -> None:
        batch = self.take()
        if batch:
            self.sent += 1
            self._worker.log_event(
                TOPIC,
                {"worker": self._worker.address, "seq": self.sent, "events": pack_events(batch)},
            )

    def take(self) -> list[EventTuple]:
        queue = self._queue
        batch = []
        while queue:
            batch.append(queue.popleft())
        return batch


def pack_events(batch: list[EventTuple]) -> bytes:
    """One batch of events as bytes (see the module docstring)."""
    return pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)


def unpack_events(events: bytes | list[EventTuple]) -> list[EventTuple]:
    """The events of a batch (a list as such: from :func:`drain_worker_events`)."""
    if isinstance(events, bytes):
        return cast("list[EventTuple]", pickle.loads(events))
    return events


def drain_worker_events(dask_worker: Any) -> dict[str, Any]:
    """Events not sent yet, and how many batches were (run with ``client.run``).

    Runs on the worker's event loop, like the timer that sends batches, so
    the two never interleave. The client routes the returned events itself
    and waits until it has received batch number ``seq`` from this worker.
    """
    buffer = getattr(dask_worker, "_daskflow_events", None)
    if buffer is None:
        return {"seq": 0, "events": []}
    return {"seq": buffer.sent, "events": buffer.take()}


def trim_event_log(scheduler: Any) -> None:
    """Keep no more than :data:`KEPT_BATCHES` event batches in the scheduler's log.

    The scheduler keeps the last ``distributed.admin.low-level-log-length``
    (1,000) messages of each topic; daskflow's are batches of run events, so
    it would keep every event of the last flow runs (about 100 MiB after a
    100,000-task run, growing over repeated runs). Run on the scheduler (from
    daskflow's scheduler plugin); a scheduler without this log is left as is.
    """
    topics = getattr(getattr(scheduler, "_broker", None), "_topics", None)
    if topics is None:
        return
    topic = topics[TOPIC]  # the log's default factory makes it
    events = getattr(topic, "events", None)
    if isinstance(events, deque) and events.maxlen != KEPT_BATCHES:
        topic.events = deque(events, maxlen=KEPT_BATCHES)


def emit(event: EventTuple, final: bool = False) -> None:
    """Send one transition towards the client (see the module docstring).

    ``final`` marks a run's last event: it may leave at once when the worker
    has nothing else to do.
    """
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
    buffer.add(event, final)


#: The :class:`~daskflow.states.StateType` of each value an event carries: a dict
#: lookup, where ``StateType(value)`` goes through the enum machinery (per event).
STATE_TYPES: dict[str, StateType] = {t.value: t for t in StateType}


def event_state(event: tuple[Any, ...]) -> State:
    """The :class:`~daskflow.states.State` an event reports (without a value)."""
    _, _, type_value, timestamp, _, _, message, error_type, error_message, traceback = event[:10]
    return State(
        STATE_TYPES[type_value], timestamp, message or "", error_type, error_message, traceback
    )

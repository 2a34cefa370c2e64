"""Run events and the bus that hands them, in batches, to observers.

The engine describes everything that happens to runs as events: a flow run
was created, a task run was created, a run changed state, a log record was
made, a run created an artifact (or updated a progress one), task runs were
found to depend on others (:class:`TaskEdgesAdded`), and the cluster's
workers were sampled (:class:`ResourcesSampled`, once a second).
Observers (the in-memory one here; the run store, progress bars and the panel
later) subclass :class:`Observer` and receive lists of events through
``on_events``. They never see a call per transition on the hot path: the
engine publishes whole batches (one per graph submission on the client, one
per worker message), and one dispatcher thread delivers them, so an observer
that writes to a database never holds up the flow or Dask's event loop. The
dispatcher waits :data:`DISPATCH_DELAY` after the first batch for others to
join it (a store then writes one transaction for many worker messages),
except when :meth:`EventBus.flush` asks for everything at once.

With no observer registered, :meth:`EventBus.active` is False and the engine
does not even build the events.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from daskflow.states import State

__all__ = [
    "ArtifactCreated",
    "ArtifactUpdated",
    "Event",
    "EventBus",
    "FlowRunCreated",
    "LogEmitted",
    "Observer",
    "ResourcesSampled",
    "StateChanged",
    "TaskEdgesAdded",
    "TaskRunCreated",
    "bus",
]

logger = logging.getLogger("daskflow.observers")


@dataclass(frozen=True, slots=True)
class FlowRunCreated:
    """A flow run began."""

    flow_run_id: str
    flow_name: str
    run_name: str
    parameters: dict[str, Any]
    parent_flow_run_id: str | None
    timestamp: float
    version: str | None = None
    resumed_from: str | None = None  # the flow run this one resumes (see Flow.resume)
    entrypoint: str | None = None  # "file.py:attribute" of the flow, for `daskflow runs retry`
    scheduled_time: float | None = None  # the schedule slot a `serve` run serves (epoch s)


@dataclass(frozen=True, slots=True)
class TaskRunCreated:
    """A task run was created inside a flow run (it starts PENDING).

    ``parent_task_run_id`` names the task run that started it, for a run a
    task called, submitted or mapped (:mod:`daskflow.engine.nested`).
    """

    task_run_id: str
    flow_run_id: str
    task_name: str
    run_name: str
    map_index: int | None
    tags: frozenset[str]
    key: Any
    timestamp: float
    parent_task_run_id: str | None = None


@dataclass(frozen=True, slots=True)
class StateChanged:
    """A flow run (``task_run_id`` None) or a task run entered ``state``."""

    flow_run_id: str
    task_run_id: str | None
    state: State
    attempt: int = 0
    worker: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LogEmitted:
    """A log record of a flow run (``task_run_id`` None) or of a task run."""

    flow_run_id: str
    task_run_id: str | None
    timestamp: float
    level: int
    logger: str
    message: str


@dataclass(frozen=True, slots=True)
class ArtifactCreated:
    """A run created an artifact (:mod:`daskflow.artifacts`).

    ``data`` is the artifact's content as JSON text; ``flow_run_id`` and
    ``task_run_id`` are None for an artifact created outside any run.
    """

    flow_run_id: str | None
    task_run_id: str | None
    artifact_id: str
    key: str | None
    type: str
    data: str
    description: str | None
    timestamp: float


@dataclass(frozen=True, slots=True)
class ArtifactUpdated:
    """A progress artifact's content (and its description, unless None) changed in place.

    The ids are those of the run that made the change, not necessarily the
    one that created the artifact.
    """

    flow_run_id: str | None
    task_run_id: str | None
    artifact_id: str
    data: str
    description: str | None
    timestamp: float


@dataclass(frozen=True, slots=True)
class TaskEdgesAdded:
    """Dependencies of a flow run's task runs that were not reported before.

    ``edges`` are ``(upstream task name, downstream task name)`` pairs: the
    run's graph aggregated per task name, each pair once per flow run however
    many task runs it joins. ``run_edges`` are ``(upstream task run id,
    downstream task run id)`` pairs among the first task runs of the flow run
    only (:data:`daskflow.engine.edges.RUN_EDGES_KEPT`), enough to draw
    a small run one node per task run.
    """

    flow_run_id: str
    edges: tuple[tuple[str, str], ...]
    run_edges: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ResourcesSampled:
    """One sample of the workers of the cluster a flow run runs on.

    ``workers`` holds ``(worker address, cpu %, memory bytes)`` per worker,
    as the scheduler last heard from it, at ``timestamp``.
    """

    flow_run_id: str
    timestamp: float
    workers: tuple[tuple[str, float, float], ...]


Event = (
    FlowRunCreated
    | TaskRunCreated
    | StateChanged
    | LogEmitted
    | ArtifactCreated
    | ArtifactUpdated
    | TaskEdgesAdded
    | ResourcesSampled
)


class Observer:
    """Base class of everything that watches runs. Hooks do nothing by default.

    Subclasses override :meth:`on_events`; it is called from one dispatcher
    thread, never concurrently with itself, with events in the order each
    producer emitted them.
    """

    def on_events(self, events: Sequence[Event], **kwargs: Any) -> None:
        """Receive a batch of events."""

    def close(self, **kwargs: Any) -> None:
        """The observer was unregistered."""


#: Seconds the dispatcher waits after the first queued batch for more to join it:
#: each delivery is a store transaction, and a busy flow sends many small batches.
DISPATCH_DELAY = 0.2


class EventBus:
    """Queues event batches and delivers them to observers on one thread."""

    def __init__(self) -> None:
        self._observers: tuple[Observer, ...] = ()
        self._observers_lock = threading.Lock()
        self._queue: deque[Sequence[Event]] = deque()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pending = 0
        self._idle = threading.Condition()
        self._urgent = 0  # threads waiting in flush(): deliver at once

    @property
    def active(self) -> bool:
        """True when at least one observer listens."""
        return bool(self._observers)

    def register(self, observer: Observer) -> Observer:
        """Start sending events to ``observer``; returns it."""
        with self._observers_lock:
            self._observers = (*self._observers, observer)
        return observer

    def unregister(self, observer: Observer) -> None:
        """Stop sending events to ``observer`` (after delivering what is queued)."""
        self.flush()
        with self._observers_lock:
            self._observers = tuple(o for o in self._observers if o is not observer)
        observer.close()

    def publish(self, events: Sequence[Event]) -> None:
        """Queue a batch for delivery; returns at once."""
        if not events or not self._observers:
            return
        with self._idle:
            self._pending += 1
        if self._thread is None:
            self._start()
        with self._wake:
            # only the first batch wakes the dispatcher: it is waiting for one, while
            # with batches queued it waits DISPATCH_DELAY for more anyway (a flow under
            # cluster="sync" publishes a batch per task run: no thread switch for each)
            first = not self._queue
            self._queue.append(events)
            if first:
                self._wake.notify()

    def flush(self, timeout: float = 30.0) -> bool:
        """Deliver every queued batch now and wait until it was; False on timeout."""
        with self._wake:
            self._urgent += 1
            self._wake.notify()
        try:
            with self._idle:
                return self._idle.wait_for(lambda: self._pending == 0, timeout)
        finally:
            with self._wake:
                self._urgent -= 1

    def _start(self) -> None:
        with self._wake:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="daskflow-events", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            with self._wake:
                self._wake.wait_for(lambda: bool(self._queue))
                # let more batches join this one (one store transaction for many worker
                # batches), unless someone waits in flush()
                self._wake.wait_for(lambda: self._urgent > 0, DISPATCH_DELAY)
            while self._queue:
                # everything queued goes as one batch: one transaction for a store
                batch: list[Event] = []
                taken = 0
                while self._queue:
                    batch.extend(self._queue.popleft())
                    taken += 1
                for observer in self._observers:
                    try:
                        observer.on_events(batch)
                    except Exception:
                        logger.exception("daskflow: observer %r failed on a batch", observer)
                with self._idle:
                    self._pending -= taken
                    self._idle.notify_all()


bus = EventBus()

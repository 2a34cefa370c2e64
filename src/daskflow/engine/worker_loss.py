"""Recording the attempts a dead worker took with it, from what the scheduler saw.

A worker sends its run events in batches (:mod:`.emit`), so a worker killed
mid-run takes with it the events it had not sent yet: the RUNNING of the
attempt it was running, or the end of one it had just finished. Dask then
reruns the task elsewhere (a task it was running, and a finished one whose
result lived only there) and counts the death on the scheduler
(``TaskState.suspicious``). The flow run rebuilds those attempts when it
ends, from one scheduler query, so a flow run on a healthy cluster pays
nothing:

- :class:`WorkerLossWatch`, a scheduler plugin registered once per client,
  keeps a :class:`Death` per worker that left uninvited: when, its thread
  count, the task runs it was running or had been sent (*processing*), and
  the finished ones whose result died with it (*lost*), each with the time
  the scheduler sent it there (and, for lost ones, when it finished), read
  from the scheduler's transition log once, at the death. It also publishes
  one event on :data:`LOSS_TOPIC`, which the client counts: a flow run asks
  for the deaths (:meth:`WorkerLossWatch.deaths_of`) only when the count
  moved while it ran.
- :func:`lost_attempts` turns a flow run's deaths into the transitions its
  record lacks. An attempt that died running: RUNNING (its own event when it
  arrived, else one at the time the scheduler sent the task to the worker)
  then RETRYING "a worker died during this attempt" (``worker_died`` in its
  details; a rebuilt RUNNING has ``rebuilt``). Of the runs a dead worker had
  been sent but never reported, only as many as it had threads, the earliest
  sent, count as started (Dask sends a worker a few more than it runs at
  once). That is an estimate: a worker killed within moments of receiving a
  task may not have started it yet. An attempt that finished but whose end was not reported:
  its RUNNING if missing, then RETRYING "its result died with the worker" at
  the time it finished; the run's final state comes after, from Dask.

Where the plugin cannot be registered (daskflow not installed beside a remote
scheduler), the count is unknown, every flow run asks, and only the death
counts are known: each becomes a RUNNING and a RETRYING just before the first
attempt the client saw.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin

from daskflow.observers.events import StateChanged
from daskflow.states import State, StateType

__all__ = [
    "LOSS_TOPIC",
    "Death",
    "Placement",
    "WorkerLossWatch",
    "counted_deaths",
    "in_chunks",
    "lost_attempts",
    "moved",
]

logger = logging.getLogger("daskflow.engine")

LOSS_TOPIC = "daskflow-worker-loss"

#: The state message of an attempt whose worker died while running it.
DIED_RUNNING = "a worker died during this attempt; Dask rescheduled the task"
#: The state message of an attempt that finished on a worker that then died.
DIED_HOLDING = (
    "the worker that ran this attempt died before reporting its end; "
    "its result died with the worker"
)


#: Details of a RUNNING rebuilt from the scheduler (its own event died with the worker).
REBUILT = {"rebuilt": "the worker died before sending this event"}


@dataclass(frozen=True, slots=True)
class Death:
    """A worker that left the cluster uninvited, as the scheduler saw it.

    Attributes
    ----------
    worker
        Its address.
    time
        When the scheduler removed it (scheduler clock).
    nthreads
        How many tasks it ran at once (0: unknown).
    processing
        ``(key, sent)`` of the tasks it was running or had been sent, earliest
        sent first; ``sent`` is None when the transition log no longer has it.
    lost
        ``(key, sent, finished)`` of tasks that had finished there and whose
        result existed nowhere else.
    """

    worker: str
    time: float
    nthreads: int
    processing: tuple[tuple[Any, float | None], ...]
    lost: tuple[tuple[Any, float | None, float | None], ...]


@dataclass(frozen=True, slots=True)
class Placement:
    """What a task run's events said from one worker: last attempt and state."""

    worker: str
    attempt: int
    state: StateType


class WorkerLossWatch(SchedulerPlugin):
    """Scheduler plugin: a :class:`Death` and an event per worker that dies."""

    name = "daskflow-worker-loss"
    idempotent = True  # a second registration (another client) keeps the first

    def __init__(self, keep: int = 100) -> None:
        self.nthreads: dict[str, int] = {}
        self.record: deque[Death] = deque(maxlen=keep)

    async def start(self, scheduler: Any) -> None:
        for address, ws in scheduler.workers.items():
            self.nthreads[address] = ws.nthreads
        from daskflow.engine.emit import trim_event_log

        trim_event_log(scheduler)  # the one daskflow plugin every scheduler gets

    def add_worker(self, scheduler: Any, worker: str) -> None:
        ws = scheduler.workers.get(worker)
        self.nthreads[worker] = ws.nthreads if ws is not None else 0

    def remove_worker(self, scheduler: Any, worker: str, **kwargs: Any) -> None:
        nthreads = self.nthreads.pop(worker, 0)
        try:
            death = _death_of(scheduler, worker, nthreads)
        except Exception:  # a scheduler we do not know: the count still moves
            logger.debug("daskflow: could not read a worker's death", exc_info=True)
            death = None
        if death is not None:
            self.record.append(death)
        scheduler.log_event(LOSS_TOPIC, {"worker": worker})

    @classmethod
    def deaths_of(cls, scheduler: Any, keys: Collection[Any]) -> list[Death]:
        """The recorded deaths that touched ``keys`` (run with ``run_on_scheduler``)."""
        plugin = scheduler.plugins.get(cls.name)
        if plugin is None:
            return []
        found = []
        for death in getattr(plugin, "record", ()):  # () from an older daskflow
            if any(k in keys for k, _ in death.processing) or any(
                k in keys for k, _, _ in death.lost
            ):
                found.append(death)
        return found


def _death_of(scheduler: Any, worker: str, nthreads: int) -> Death | None:
    """Read the death of ``worker`` from the event the scheduler just logged."""
    removal = next(
        (
            (when, msg)
            for when, msg in reversed(scheduler.get_events(worker))
            if isinstance(msg, dict) and msg.get("action") == "remove-worker"
        ),
        None,
    )
    if removal is None or removal[1].get("expected"):
        return None  # retired or closed on purpose: nothing died running
    died, msg = removal
    processing = set(msg.get("processing-tasks", ()))
    lost = set(msg.get("lost-computed-tasks", ()))
    sent: dict[Any, float] = {}
    finished: dict[Any, float] = {}
    wanted = processing | lost
    # newest first: the last time each task was sent, and when a lost one finished;
    # what the scheduler did after the removal (sending them elsewhere) does not count
    for entry in reversed(scheduler.transition_log) if wanted else ():
        key = entry.key
        if key not in wanted or key in sent or entry.timestamp >= died:
            continue
        if entry.finish == "processing":
            sent[key] = entry.timestamp
            if len(sent) == len(wanted):
                break
        elif entry.start == "processing" and entry.finish == "memory":
            finished.setdefault(key, entry.timestamp)
    order = sorted(processing, key=lambda k: sent.get(k, float("inf")))
    return Death(
        worker,
        died,
        nthreads,
        tuple((k, sent.get(k)) for k in order),
        tuple((k, sent.get(k), finished.get(k)) for k in lost),
    )


def lost_attempts(
    flow_run_id: str,
    runs: Mapping[Any, Any],
    deaths: Iterable[Death],
    placements: Mapping[str, list[Placement]],
) -> list[StateChanged]:
    """The transitions a flow run's record lacks because workers died.

    Parameters
    ----------
    flow_run_id
        The flow run.
    runs
        Its task runs (:class:`~daskflow.engine.runs.TaskRun`) by Dask key.
    deaths
        The deaths that touched its keys, oldest first.
    placements
        Per task run id, what its events said from each worker they came from.

    Returns
    -------
    list of StateChanged
        RUNNING (where the attempt's own one never arrived) and RETRYING
        transitions, with ``details={"worker_died": True}``.
    """
    out: list[StateChanged] = []
    deaths = sorted(deaths, key=lambda d: d.time)
    last_death = {k: d for d in deaths for k, _ in d.processing}
    for death in deaths:
        nthreads = death.nthreads or len(death.processing)
        for rank, (key, sent) in enumerate(death.processing):
            run = runs.get(key)
            if run is None:
                continue
            seen = _placement(run, placements, death.worker)
            if seen is not None and seen.state is not StateType.RUNNING:
                continue  # its attempt ended (or waited to retry) before the death
            if seen is None and rank >= nthreads:
                continue  # sent there, never started
            if last_death.get(key) is death and _crashed(run):
                ended = None  # the run's CRASHED closes this attempt
            else:
                ended = State(StateType.RETRYING, death.time, message=DIED_RUNNING)
            out += _attempt(flow_run_id, run, death, seen, sent, ended)
        for key, sent, finished in death.lost:
            run = runs.get(key)
            if run is None:
                continue
            seen = _placement(run, placements, death.worker)
            if seen is not None and seen.state is not StateType.RUNNING:
                continue  # its end arrived
            ended = State(StateType.RETRYING, finished or death.time, message=DIED_HOLDING)
            out += _attempt(flow_run_id, run, death, seen, sent, ended)
    return out


def in_chunks(
    death: Death, members: Mapping[Any, list[Any]], placements: Mapping[str, list[Placement]]
) -> Death:
    """``death`` with each chunk's key replaced by its elements' keys.

    A chunk (:mod:`daskflow.engine.chunks`) runs its elements one after
    another and reruns them all elsewhere when its worker dies. Of an element
    whose events from the dead worker arrived, the attempt is what they say.
    An element never heard of anywhere finished on the dead worker: its
    stored result was reloaded silently by the rerun (it counts as *lost*,
    like a finished task whose result died there). Of a chunk none of whose
    elements was heard of there, its first element not silently reloaded
    stands for the attempt that died.
    An element never heard of there after one that ended there had started
    when the worker died (elements run in order, their events leave in
    order).
    """

    def heard(key: Any) -> list[Any]:
        elements = members.get(key)
        if elements is None:
            return [key]
        return [e.key for e in elements if _placement(e, placements, death.worker) is not None]

    def silent(key: Any) -> list[Any]:
        elements = members.get(key, ())
        return [e.key for e in elements if e.worker is None and not placements.get(e.id)]

    def running(key: Any) -> list[Any]:
        """The elements heard of there, and the one presumably running at the death."""
        elements = members.get(key)
        if elements is None:
            return [key]
        found = []
        for element in elements:
            seen = _placement(element, placements, death.worker)
            if seen is not None:
                found.append(element.key)
                if not seen.state.is_final:  # this one was running
                    break
            elif element.worker is not None or placements.get(element.id):
                found.append(element.key)  # next in line: it had started, unheard of
                break
        return found

    processing = tuple((k, sent) for key, sent in death.processing for k in running(key))
    lost = tuple((k, sent, end) for key, sent, end in death.lost for k in heard(key))
    lost += tuple(
        (k, sent, None) for key, sent, *_ in (*death.processing, *death.lost) for k in silent(key)
    )
    return Death(death.worker, death.time, death.nthreads, processing, lost)


def counted_deaths(
    flow_run_id: str,
    runs: Mapping[Any, Any],
    counts: Mapping[Any, int],
    placements: Mapping[str, list[Placement]],
) -> list[StateChanged]:
    """Without the plugin: ``counts[key]`` attempts died, times unknown."""
    out: list[StateChanged] = []
    for key, count in counts.items():
        run = runs.get(key)
        if run is None:
            continue
        # the dead attempts ran before the first attempt the client saw start
        now = time.time()
        when = (run.started or now) - 1e-3
        earlier = [p for p in placements.get(run.id, ()) if p.state is StateType.RUNNING]
        for i in range(count):
            seen = earlier[i] if i < len(earlier) else None
            died = State(StateType.RETRYING, when, message=DIED_RUNNING)
            death = Death(seen.worker if seen else "", when, 0, (), ())
            out += _attempt(flow_run_id, run, death, seen, when, died)
    return out


def moved(placements: dict[str, list[Placement]] | None, run: Any) -> dict[str, list[Placement]]:
    """Remember what ``run``'s events said from the worker it is leaving."""
    placements = {} if placements is None else placements
    seen = Placement(run.worker, run.attempt, run.latest)
    placements.setdefault(run.id, []).append(seen)
    return placements


def _placement(
    run: Any, placements: Mapping[str, list[Placement]], worker: str
) -> Placement | None:
    """What the run's events said from ``worker``, or None if none came from there."""
    if run.worker == worker:
        return Placement(worker, run.attempt, run.latest)
    for seen in placements.get(run.id, ()):
        if seen.worker == worker:
            return seen
    return None


def _crashed(run: Any) -> bool:
    future = run.future
    return future is not None and future.done() and future.status == "error"


def _attempt(
    flow_run_id: str,
    run: Any,
    death: Death,
    seen: Placement | None,
    sent: float | None,
    ended: State | None,
) -> list[StateChanged]:
    """The RUNNING (unless its own arrived) and the end of one attempt on ``death.worker``."""
    worker = death.worker or None
    attempt = seen.attempt if seen is not None else 1
    out = []
    if seen is None:
        started = State(StateType.RUNNING, sent if sent is not None else death.time)
        out.append(StateChanged(flow_run_id, run.id, started, attempt, worker, REBUILT))
    if ended is not None:
        out.append(StateChanged(flow_run_id, run.id, ended, attempt, worker, {"worker_died": True}))
    return out


def watch_worker_loss(client: Any) -> bool:
    """Register the plugin on ``client``'s scheduler; False when it cannot be."""
    try:
        client.register_plugin(WorkerLossWatch())
    except Exception:
        logger.debug("daskflow: could not register the worker-loss plugin", exc_info=True)
        return False
    return True

"""Executing batches of task runs: on a Dask cluster, or in this thread.

:class:`DistributedBackend` lowers a batch into one low-level graph — a dict of
``dask._task_spec.Task`` whose function is the attempt wrapper and whose only
dependencies are the upstream runs — and hands it to the scheduler with one
``client.get(..., sync=False)``: one message for the whole batch, futures for
every key. Dependencies on runs of earlier batches are the futures
themselves. Worker events come back through one topic subscription per
client and are routed to their flow run.

:class:`SyncBackend` runs each task run at once, in the calling thread, one
after another (``cluster="sync"``: for debugging with pdb).
"""

from __future__ import annotations

import logging
import pickle
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from daskflow.engine.attempt import TaskFailure, length_of, run_task
from daskflow.engine.emit import (
    TOPIC,
    drain_worker_events,
    event_state,
    local_sink,
    unpack_events,
)
from daskflow.engine.runs import TaskRun
from daskflow.engine.scatter import ScatteredArguments
from daskflow.errors import CrashedError, SerializationError, UpstreamFailedError
from daskflow.states import State, StateType

if TYPE_CHECKING:
    from daskflow.engine.worker_loss import Placement
    from daskflow.observers.events import StateChanged

__all__ = ["DistributedBackend", "SyncBackend"]

logger = logging.getLogger("daskflow.engine")

# route(flow_run_id, events, client): ``client`` is the one that received them
EventHandler = Callable[[str, list[tuple[Any, ...]], Any], None]


class SyncBackend:
    """Runs every task run immediately in the calling thread."""

    eager = True
    client = None

    def __init__(self, on_events: EventHandler) -> None:
        self._on_events = on_events

    def execute(self, run: TaskRun) -> None:
        events: list[tuple[Any, ...]] = []
        assert run.spec is not None
        upstream = [up.value for up in run.upstream]
        upstream.extend(reversed(run.spec.data))  # large arguments: see DataSlot
        with local_sink(events.append):
            run.value = run_task(run.spec, *upstream)
        self._on_events(run.spec.flow_run_id, events, None)

    def describe(self, flow_run_id: str | None = None) -> str:
        return "sync (in this thread)"

    def panel_url(self, flow_run_id: str) -> str | None:
        """The run's page in the panel: only where configured (``daskflow.dashboard.url``)."""
        return _configured_panel_url(flow_run_id)


class DistributedBackend:
    """Runs task runs on the Dask cluster behind ``client``."""

    eager = False

    # one events subscription per client
    _routers: weakref.WeakKeyDictionary[Any, _Router] = weakref.WeakKeyDictionary()

    def __init__(self, client: Any, route: EventHandler) -> None:
        self.client = client
        router = self._routers.get(client)
        if router is None:
            # imports distributed's plugin module: only once a cluster is in use
            from daskflow.engine.worker_loss import LOSS_TOPIC, watch_worker_loss

            router = self._routers[client] = _Router(route, client)
            client.subscribe_topic(TOPIC, router)
            client.subscribe_topic(LOSS_TOPIC, router.on_worker_loss)
            if not watch_worker_loss(client):
                router.workers_lost = None
            router.panel = _mount_panel(client)
        self._router = router

    def panel_url(self, flow_run_id: str) -> str | None:
        """The run's page in the panel on this cluster's dashboard, else the configured one."""
        if self._router.panel:
            from daskflow.panel.plugin import panel_link

            return panel_link(self.client, flow_run_id)
        return _configured_panel_url(flow_run_id)

    def describe(self, flow_run_id: str | None = None) -> str:
        from daskflow.panel.plugin import dashboard_link, panel_link

        client = self.client
        link = dashboard_link(client)
        where = f"the Dask cluster at {client.scheduler.address} (dashboard {link}"
        if self._router.panel:
            return f"{where}, daskflow panel {panel_link(client, flow_run_id)})"
        return f"{where}; see this run with `daskflow dashboard`)"

    # -- submission --------------------------------------------------------------
    def submit(self, batch: Sequence[TaskRun]) -> None:
        """Send ``batch`` as one graph (one per distinct ``resources`` value)."""
        start = 0
        for end in range(1, len(batch) + 1):
            if end == len(batch) or _resources(batch[end]) != _resources(batch[start]):
                self._submit_segment(batch[start:end], _resources(batch[start]))
                start = end

    def _submit_segment(self, runs: Sequence[TaskRun], resources: dict[str, float] | None) -> None:
        from daskflow.engine.lowering import Lowering

        lowering = Lowering(self._router.threads(self.client), _fail_upstream)
        try:
            lowering.add(runs, self._scatter(runs))
            if not lowering.keys:
                return
            graph = _as_expression(lowering.graph)
            futures = self.client.get(graph, lowering.keys, sync=False, resources=resources)
        except Exception as exc:
            if not _is_pickling_error(exc):
                raise
            _blame_unpicklable(runs, exc)
            return self._submit_segment(runs, resources)
        lowering.assign(futures)

    def _scatter(self, runs: Sequence[TaskRun]) -> dict[int, Any]:
        """Send the batch's large arguments (:mod:`daskflow.engine.scatter`)."""
        large = [obj for r in runs if r.spec is not None and r.spec.data for obj in r.spec.data]
        return self._router.scattered.futures(self.client, large)

    # -- reading outcomes ----------------------------------------------------------
    def wait(self, runs: Sequence[TaskRun], timeout: float | None) -> bool:
        from distributed.client import _wait

        from daskflow.engine.chunks import dask_futures, prefetch_statuses

        futures = [r.future for r in runs if r.future is not None and not r.future.done()]
        if futures:
            try:
                self.client.sync(_wait, dask_futures(futures), timeout=timeout)
            except TimeoutError:
                return False
            except Exception:  # cancelled futures: they are done, their state says so
                pass
        # which batched elements failed, for all their chunks at once
        prefetch_statuses(self.client, [r.future for r in runs if r.future is not None])
        return True

    def final_state(self, run: TaskRun) -> State | None:
        """The run's final state if its future is done, else None."""
        future = run.future
        if future is None or not future.done():
            return None
        status = future.status
        if status == "finished":
            if future.type is TaskFailure:
                if run.failure is None:
                    run.failure = future.result()
                return run.failure.state
            return State(StateType.COMPLETED, timestamp=_final_time(run), data=_Lazy(run))
        if status == "cancelled":
            if run.final_event is not None:  # it ended before its chunk was cancelled
                return _reported_state(run)
            return State(StateType.CANCELLED, message="the run's Dask task was cancelled")
        exc = future.exception()
        if any(up.future is not None and up.future.status == "error" for up in run.upstream):
            return State.from_exception(
                StateType.UPSTREAM_FAILED, UpstreamFailedError(run.run_name)
            )
        if _is_killed_worker(exc):
            return State.from_exception(
                StateType.CRASHED, CrashedError(f"task run {run.run_name!r}", str(exc))
            )
        return State.from_exception(StateType.FAILED, exc)

    def fetch_failures(self, runs: Sequence[TaskRun]) -> None:
        """Gather the ``TaskFailure`` values of failed runs in one call."""
        todo = [
            r
            for r in runs
            if r.failure is None
            and r.future is not None
            and r.future.status == "finished"
            and r.future.type is TaskFailure
        ]
        if todo:
            from daskflow.engine.chunks import gather_elements

            for run, failure in zip(
                todo, gather_elements(self.client, [r.future for r in todo]), strict=True
            ):
                run.failure = failure

    def result(self, run: TaskRun, timeout: float | None) -> Any:
        try:
            return run.future.result(timeout=timeout)
        except TimeoutError:
            raise
        except Exception as exc:
            if _is_pickling_error(exc):
                raise SerializationError(run.run_name, "its result", exc) from exc
            raise

    def results(self, runs: Sequence[TaskRun]) -> list[Any]:
        """Values of many runs: one gather (a batched chunk's list is fetched once)."""
        from daskflow.engine.chunks import gather_elements

        return gather_elements(self.client, [r.future for r in runs]) if runs else []

    def cancel(self, runs: Sequence[TaskRun]) -> None:
        from daskflow.engine.chunks import dask_futures

        futures = [r.future for r in runs if r.future is not None and not r.future.done()]
        if futures:
            futures = dask_futures(futures, statuses=False)
            self.client.cancel(futures, reason="daskflow: flow run ended", force=True)

    def tell_cancelled(self, flow_run_id: str) -> None:
        """Tell every worker the flow run was cancelled (see :mod:`.cancellation`).

        One ``client.run`` on a thread of its own: nobody waits for it.
        """
        from daskflow.engine.cancellation import mark_cancelled

        def tell() -> None:
            try:
                self.client.run(mark_cancelled, flow_run_id, on_error="ignore")
            except Exception:
                logger.debug("daskflow: could not tell workers of a cancellation", exc_info=True)

        threading.Thread(target=tell, name="daskflow-tell-cancelled", daemon=True).start()

    def release(self, runs: Sequence[TaskRun]) -> None:
        """Drop the futures (the cluster forgets the results); keep final states."""
        for run in runs:
            if run.future is not None:
                if run.local_state is None:
                    run.local_state = self.final_state(run)
                run.future = None

    def fill_workers(self, runs: Sequence[TaskRun]) -> None:
        """Set ``run.worker`` of finished runs from the scheduler (one call).

        For runs whose worker's reports never reached the client before the
        flow run ended: their records still say where they ran.
        """
        from daskflow.engine.chunks import dask_futures

        futures = [r.future for r in runs if r.future is not None and r.future.done()]
        if not futures:
            return
        try:
            held = self.client.who_has(dask_futures(futures, statuses=False))
        except Exception:
            logger.debug("daskflow: could not ask where results are held", exc_info=True)
            return
        for run in runs:
            if run.future is not None and held.get(run.future.key):
                run.worker = held[run.future.key][0]

    def workers_lost(self) -> int | None:
        """How many workers left the cluster since this client connected; None: unknown."""
        return self._router.workers_lost

    def drain_events(self, timeout: float = 5.0) -> None:
        """Collect every event the workers still hold or have on the way.

        One ``client.run`` returns what each worker has queued and how many
        batches it sent; then wait (briefly) until those batches arrived. A
        worker that dies meanwhile is not waited for: its batches died with
        it, and the flow run rebuilds its attempts from the scheduler
        (:mod:`daskflow.engine.worker_loss`).
        """
        try:  # a worker dying under the call fails only its own reply
            replies = self.client.run(drain_worker_events, on_error="return")
        except Exception:
            logger.debug("daskflow: could not drain worker events", exc_info=True)
            return
        replies = {w: r for w, r in replies.items() if isinstance(r, dict)}
        for reply in replies.values():
            if reply["events"]:
                self._router.deliver(reply["events"])
        missing = self.wait_for_batches({w: r["seq"] for w, r in replies.items()}, timeout)
        for worker in missing:
            logger.warning("daskflow: events from worker %s did not all arrive", worker)

    def wait_for_batches(self, batches: dict[str, int], timeout: float) -> list[str]:
        """Wait until batch number ``batches[worker]`` of each worker arrived.

        Returns the live workers whose batches did not arrive in time. A
        worker that left is not waited for: the worker-loss event says so at
        once, and while batches are missing the scheduler is asked every half
        second which workers are alive (in case that event is late).
        """
        deadline = time.monotonic() + timeout
        waiting = dict(batches)
        while waiting:
            step = min(deadline, time.monotonic() + 0.5)
            waiting = {
                w: seq for w, seq in waiting.items() if not self._router.wait_for(w, seq, step)
            }
            if not waiting or time.monotonic() >= deadline:
                break
            try:
                live = set(self.client.run_on_scheduler(_worker_addresses))
            except Exception:
                continue
            waiting = {w: seq for w, seq in waiting.items() if w in live}
        return list(waiting)

    def length(self, run: TaskRun) -> int:
        """How many elements a completed run's value has, computed where it lives."""
        future = run.future
        if hasattr(future, "chunk"):  # an element of a batched chunk
            return int(future.length())
        return int(self.client.submit(length_of, future, pure=False).result())

    def lost_attempts(
        self,
        flow_run_id: str,
        runs: Sequence[TaskRun],
        since: int | None,
        placements: dict[str, list[Placement]],
    ) -> list[StateChanged]:
        """Transitions of attempts that died with their worker (see :mod:`.worker_loss`).

        Asks the scheduler, once, only when a worker left after the count
        ``since`` (see :meth:`workers_lost`): a flow run on a healthy cluster
        pays nothing.
        """
        from daskflow.engine.worker_loss import (
            WorkerLossWatch,
            counted_deaths,
            in_chunks,
            lost_attempts,
        )

        lost = self.workers_lost()
        if not runs or (lost is not None and since is not None and lost <= since):
            return []
        by_key = {r.key: r for r in runs if r.future is not None}
        members: dict[Any, list[TaskRun]] = {}  # batched elements by chunk key
        for run in runs:
            if hasattr(run.future, "chunk"):
                members.setdefault(run.future.key, []).append(run)
        keys = set(by_key) | set(members)
        try:
            if lost is not None:  # the plugin keeps each death
                deaths = self.client.run_on_scheduler(
                    lambda dask_scheduler: WorkerLossWatch.deaths_of(dask_scheduler, keys)
                )
                if members:
                    deaths = [in_chunks(d, members, placements) for d in deaths]
                return lost_attempts(flow_run_id, by_key, deaths, placements)
            counts = self.client.run_on_scheduler(
                lambda dask_scheduler: {
                    k: ts.suspicious for k, ts in dask_scheduler.tasks.items() if ts.suspicious
                }
            )
        except Exception:
            logger.debug("daskflow: could not read worker deaths from the scheduler", exc_info=True)
            return []
        counts = {k: n for k, n in counts.items() if k in keys}
        return counted_deaths(flow_run_id, by_key, counts, placements)


class _Router:
    """The client's handler of the events topic: ``(timestamp, batch)``.

    Routes each worker batch to its flow runs and remembers the last batch
    number seen from each worker, for :meth:`DistributedBackend.drain_events`.
    It also counts the workers that left (see :mod:`daskflow.engine.worker_loss`).
    """

    def __init__(self, route: EventHandler, client: Any) -> None:
        self._route = route
        # every client subscribed to the topic receives every batch: the flow run
        # takes events only from the client it runs on, so none counts twice
        self._client = weakref.ref(client)
        self._seen: dict[str, int] = {}
        self._departed: set[str] = set()  # workers that left: never waited for
        self._arrived = threading.Condition()
        self.workers_lost: int | None = 0
        self.panel = False  # the daskflow panel is served on this client's dashboard
        self.scattered = ScatteredArguments()  # large arguments sent on their own
        self._threads = (0, 0.0)  # worker threads on the cluster, and when counted

    def threads(self, client: Any) -> int:
        """Worker threads on the cluster (asked at most every few seconds)."""
        count, when = self._threads
        now = time.monotonic()
        if now - when > 5.0 or not count:
            try:
                count = sum(client.nthreads().values())
            except Exception:
                count = count or 1
            self._threads = (count, now)
        return count

    def __call__(self, event: tuple[float, dict[str, Any]]) -> None:
        _, message = event
        self.deliver(unpack_events(message["events"]))
        with self._arrived:
            self._seen[message["worker"]] = message["seq"]
            self._arrived.notify_all()

    def on_worker_loss(self, event: tuple[float, Any]) -> None:
        if self.workers_lost is not None:
            self.workers_lost += 1
        with self._arrived:
            self._departed.add(event[1]["worker"])
            self._arrived.notify_all()

    def deliver(self, events: list[Any]) -> None:
        by_flow: dict[str, list[tuple[Any, ...]]] = {}
        for item in events:
            by_flow.setdefault(item[0], []).append(tuple(item))
        for flow_run_id, items in by_flow.items():
            self._route(flow_run_id, items, self._client())

    def wait_for(self, worker: str, seq: int, deadline: float) -> bool:
        """Wait until batch ``seq`` of ``worker`` arrived or the worker left.

        False at the deadline, when a live worker's batch is still missing.
        """
        with self._arrived:
            return self._arrived.wait_for(
                lambda: self._seen.get(worker, 0) >= seq or worker in self._departed,
                max(0.0, deadline - time.monotonic()),
            )


class _Lazy:
    """A completed run's value, fetched from the cluster only when asked."""

    __slots__ = ("run",)

    def __init__(self, run: TaskRun) -> None:
        self.run = run

    def _daskflow_resolve_(self) -> Any:
        if self.run.future is None:
            raise LookupError(
                f"the result of task run {self.run.run_name!r} was released when its flow run "
                "ended; return it from the flow to keep it"
            )
        return self.run.future.result()


def _reported_state(run: TaskRun) -> State:
    """The final state the run's worker reported (a completed one keeps a lazy value)."""
    state = event_state(run.final_event or ())
    if state.type is StateType.COMPLETED:
        return State(StateType.COMPLETED, timestamp=state.timestamp, data=_Lazy(run))
    return state


def _worker_addresses(dask_scheduler: Any) -> list[str]:
    return list(dask_scheduler.workers)


def _configured_panel_url(flow_run_id: str) -> str | None:
    from daskflow.notify import panel_url

    return panel_url(flow_run_id)


def _mount_panel(client: Any) -> bool:
    """Serve the panel at /daskflow on the client's dashboard when possible."""
    from daskflow.store.observer import configured_url

    url = configured_url()
    if url.lower() in ("none", "", "memory"):
        return False  # nothing the scheduler's page could read
    try:
        from daskflow.panel.plugin import mount_panel
    except ImportError:  # bokeh missing: the Dask dashboard is off anyway
        return False
    return mount_panel(client, url)


def _as_expression(graph: dict[Any, Any]) -> Any:
    """The graph as Dask's low-level graph expression, with a name of our own.

    ``client.get(dict)`` would name the expression by tokenizing the whole
    graph: every argument hashed (DataFrames included), about a third of the
    client's time per task. Our keys are unique already, so a random name is
    as good and costs nothing.
    """
    try:
        from dask._expr import LLGExpr
    except ImportError:  # a Dask without expressions: a plain dict works there
        return graph
    return LLGExpr(graph, _determ_token=uuid.uuid4().hex)


def _resources(run: TaskRun) -> dict[str, float] | None:
    return run.task.options.resources


def _final_time(run: TaskRun) -> float:
    return run.final_event[3] if run.final_event else time.time()


def _is_killed_worker(exc: BaseException | None) -> bool:
    """True for Dask's "a worker died too often under this task"."""
    from distributed.scheduler import KilledWorker

    return isinstance(exc, KilledWorker)


def _fail_upstream(run: TaskRun) -> None:
    _fail_locally(run, UpstreamFailedError(run.run_name))


def _fail_locally(run: TaskRun, exc: BaseException) -> None:
    state_type = (
        StateType.UPSTREAM_FAILED if isinstance(exc, UpstreamFailedError) else StateType.FAILED
    )
    run.local_state = State.from_exception(state_type, exc)
    run.latest = state_type


def _is_pickling_error(exc: BaseException) -> bool:
    text = f"{type(exc).__name__}: {exc}".lower()
    return isinstance(exc, pickle.PicklingError) or "serializ" in text or "pickl" in text


def _blame_unpicklable(runs: Sequence[TaskRun], exc: BaseException) -> None:
    """Find which run's argument (or function) cannot be pickled; fail that run."""
    import cloudpickle

    for run in runs:
        if run.local_state is not None or run.spec is None:
            continue
        spec = run.spec
        parts: list[tuple[str, Any]] = [(f"argument {i}", a) for i, a in enumerate(spec.args)]
        parts += [(f"argument {k!r}", v) for k, v in spec.kwargs.items()]
        parts += [(f"an argument of type {type(v).__name__}", v) for v in spec.data]
        parts.append(("the task function", run.task.fn))
        for what, obj in parts:
            try:
                cloudpickle.dumps(obj)
            except Exception as cause:
                _fail_locally(run, SerializationError(run.task.name, what, cause))
                break
    if not any(r.local_state is not None for r in runs):
        raise exc

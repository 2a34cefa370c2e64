"""The engine of one flow run: batching task runs onto the backend, tracking them.

Design note
-----------
A flow function is plain Python running on the client. Each task call makes a
:class:`~daskflow.engine.runs.TaskRun` and appends it to ``pending`` (a deque:
appends need no lock). Pending runs go to the backend as **one graph** when

- the flow waits on something (``.result()``, ``.wait()``, ``.state``, return),
- ``daskflow.submit.batch-size`` runs are waiting, or
- ``daskflow.submit.flush-interval`` passed since the first one was added
  (a small submitter thread, woken only when ``pending`` goes from empty to
  non-empty, so tasks start while the flow function keeps going).

Flushes are serialized by a lock taken once per batch, so a batch only ever
refers to runs of the same or earlier batches. Calls whose arguments hold a
map of unknown width are *deferred*: they get their run (and future) at once
and their spec when the map expands (:meth:`FlowRunner.activate`); the
``hold``/``release`` counter lets the end of the flow wait for expansions
still to come.

Worker events for this flow run arrive through
:func:`daskflow.engine.current.route` and update the runs' live state;
converted events go to the observers' bus in batches. Runs that task runs
started (nested runs, :mod:`daskflow.engine.nested`) announce themselves in
those events and are tracked in ``nested``. The end of an attempt
(final states, what workers could not report) is
:mod:`daskflow.engine.conclusion`.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from daskflow import config
from daskflow.engine.attempt import TaskFailure
from daskflow.engine.backends import DistributedBackend, SyncBackend
from daskflow.engine.cancellation import CancelToken
from daskflow.engine.chunks import durations
from daskflow.engine.cluster import SYNC, resolve_client
from daskflow.engine.collector_pause import collector_paused
from daskflow.engine.countdown import after_all
from daskflow.engine.current import (
    listen,
    route,
    running,
    stop_listening,
    weak_sink,
)
from daskflow.engine.edges import EdgeRecorder
from daskflow.engine.emit import STATE_TYPES, event_state, local_sink
from daskflow.engine.enlist import open_transaction
from daskflow.engine.limits import limits_for
from daskflow.engine.nesting import CREATED, NESTED_RUNS, created_events, nested_run
from daskflow.engine.resources import sampler_for
from daskflow.engine.resume import Identities, Identity, ResumePlan
from daskflow.engine.run_artifacts import KINDS as ARTIFACT_KINDS
from daskflow.engine.run_artifacts import to_event as artifact_event
from daskflow.engine.run_logs import LOG
from daskflow.engine.runs import TaskRun
from daskflow.errors import FlowRunTimeout
from daskflow.observers.events import LogEmitted, StateChanged, TaskRunCreated, bus
from daskflow.states import State, StateType

if TYPE_CHECKING:
    from daskflow.engine.caching import ResultPolicy

__all__ = ["FlowRunner", "make_backend"]

logger = logging.getLogger("daskflow.engine")

#: Seconds ``t(x, return_state=True)`` waits for a completed run's own report
#: (which says CACHED, and the message) after its value arrived.
_REPORT_WAIT = 5.0


@contextlib.contextmanager
def _as_current(client: Any) -> Iterator[None]:
    """``client.as_current()`` for this context only.

    ``Client.as_current`` also sets ``dask.config``'s ``scheduler`` for the
    whole process, and restores it on exit: flows running side by side in
    threads (async flows gathered, ``serve`` with a limit above 1) restore
    each other's values in the wrong order and leave it set for good. Dask
    finds the context's client without it (``get_client`` reads the same
    context variable).
    """
    from distributed.client import _current_client

    token = _current_client.set(client)
    try:
        yield
    finally:
        _current_client.reset(token)


def make_backend(cluster: Any) -> SyncBackend | DistributedBackend:
    """The backend for a flow's ``cluster`` option."""
    client = resolve_client(cluster)
    if client == SYNC:
        return SyncBackend(route)
    return DistributedBackend(client, route)


class FlowRunner:
    """Runs the task runs of one flow run on a backend and tracks them."""

    def __init__(self, flow_run_id: str, backend: SyncBackend | DistributedBackend) -> None:
        self.flow_run_id = flow_run_id
        self.backend = backend
        self.runs: list[TaskRun] = []
        self.nested: list[TaskRun] = []  # runs started by task runs (engine.nesting)
        self.nested_expected = 0  # how many their parents said they started
        self.by_id: dict[str, TaskRun] = {}
        self.pending: deque[TaskRun] = deque()
        self.batch_size = int(config.get("submit.batch-size") or 10_000)
        self.flush_interval = config.get_seconds("submit.flush-interval")
        self._flush_lock = threading.RLock()
        self._wake = threading.Condition()
        self._submitter: threading.Thread | None = None
        self._closed = False
        self._outstanding = 0
        self._settled = threading.Condition()
        self._on_activate: dict[str, list[Callable[[], None]]] = {}
        self._activation = threading.Lock()
        self.deadline: float | None = None
        self.timeout: float | None = None  # the flow's timeout_seconds, when it has one
        # per task run id, what its events said from workers it has since left (a worker
        # died, or its result was recomputed elsewhere); None until a run first moves
        self.placements: dict[str, list[Any]] | None = None
        self.token: CancelToken | None = None  # set: the flow run was cancelled
        self._id_prefix = uuid.uuid4().hex[:24]
        self._id_counter = itertools.count()
        # results: the flow's defaults for its tasks, and what a resumed run reuses
        self.flow_name: str | None = None
        self.panel_url: str | None = None
        self.persist_result: bool | None = None
        self.result_storage: str | None = None
        self.log_prints = False  # the flow's ``log_prints``: its tasks' default
        self.resume: ResumePlan | None = None
        self._edges = EdgeRecorder(flow_run_id, self.by_id)  # the run graph, for the store
        self._identities = Identities()
        self._identity: dict[str, Identity] = {}
        self._policies: dict[Any, ResultPolicy | None] = {}
        self._limits: dict[Any, tuple[tuple[str, int], ...]] = {}
        # workers lost before this flow run started are none of its business
        self.workers_lost = (
            backend.workers_lost() if isinstance(backend, DistributedBackend) else None
        )

    # -- lifecycle -------------------------------------------------------------
    def listen(self) -> None:
        """Receive the worker events of this run's task runs (entering does it too)."""
        listen(self)

    def stop_listening(self) -> None:
        stop_listening(self)

    def __enter__(self) -> FlowRunner:
        self.listen()
        self._context = contextlib.ExitStack()
        self._context.enter_context(running(self))
        # log records of the flow function itself (get_run_logger, prints) come here
        self._context.enter_context(local_sink(weak_sink(self)))
        if self.backend.client is not None:
            # ``ddf.compute()`` in the flow function runs where the flow's tasks run
            self._context.enter_context(_as_current(self.backend.client))
            if bus.active:  # worker CPU and memory, recorded with the run (~1 Hz)
                sampler = sampler_for(self.backend.client)
                sampler.register(self.flow_run_id)
                self._context.callback(sampler.unregister, self.flow_run_id)
        return self

    def __exit__(self, *exc: object) -> None:
        self._context.close()
        self._closed = True
        with self._wake:
            self._wake.notify()
        self.stop_listening()

    # -- creating runs -----------------------------------------------------------
    def new_id(self) -> str:
        """A new task run id: 32 hex digits, unique across processes.

        A random prefix per flow run plus a counter: ``uuid4`` per run reads
        ``/dev/urandom`` each time, which shows on a 100,000-task flow.
        """
        return f"{self._id_prefix}{next(self._id_counter):08x}"

    def add(self, run: TaskRun, kick: bool = True) -> None:
        """Register a new run; it is submitted with the next batch."""
        self.runs.append(run)
        self.by_id[run.id] = run
        transaction = open_transaction.get()  # ``with transaction():`` in the flow function
        if transaction is not None:
            transaction.enlist(self, run)
        if self.resume is not None:  # identities in creation order, like the old run's
            self._identity[run.id] = self._identities.next(run.task.name, run.run_name)
        if run.deferred is None and not self.backend.eager:
            waiting = [u for u in run.upstream if u.deferred and not u.deferred.is_set()]
            if waiting:  # their calls wait for a map's width: this one waits for them
                self._defer_until_activated(run, waiting)
        if run.deferred is not None:
            self.hold()
            if bus.active:
                bus.publish(self._created_events([run]))
            return
        self._enqueue(run, kick)

    def _defer_until_activated(self, run: TaskRun, waiting: list[TaskRun]) -> None:
        """Submit ``run`` once every run in ``waiting`` (deferred) has been submitted.

        A run that takes the result of a deferred run (one waiting for the
        width of a dynamic map) cannot go to the cluster before it: its graph
        would name a key the scheduler does not know, and Dask would cancel it.
        """
        run.deferred = threading.Event()
        spec, upstream = run.spec, run.upstream
        one_ready = after_all(len(waiting), lambda: self.activate(run, spec, upstream))
        for up in waiting:
            with self._activation:
                assert up.deferred is not None
                ready = up.deferred.is_set()
                if not ready:
                    self._on_activate.setdefault(up.id, []).append(one_ready)
            if ready:
                one_ready()

    def _results_of(self, run: TaskRun) -> None:
        """Give the run's call its result policy, and what a resumed run reuses."""
        task = run.task
        try:
            policy = self._policies[task]
        except KeyError:
            options = task.options
            policy = None
            if options.persist_result or options.caches or self.persist_result:
                from daskflow.engine.caching import policy_for  # only for runs that keep results

                policy = policy_for(options, self.persist_result, self.result_storage)
                policy = policy if policy.persist else None
                if policy is not None and policy.cache_key_fn is not None:
                    _ = task.source  # read here: a task sent by value carries it to workers
            self._policies[task] = policy
        spec = run.spec
        assert spec is not None
        if self.resume is not None and run.id in self._identity:
            spec.reuse = self.resume.take(self._identity.pop(run.id))
            if spec.reuse is not None and policy is None:  # reuse only, store nothing
                from daskflow.engine.caching import ResultPolicy

                policy = ResultPolicy(storage=self._storage_of(task), persist=False)
        spec.results = policy

    def _storage_of(self, task: Any) -> str:
        from daskflow.results.storage import default_storage_url

        return task.options.result_storage or self.result_storage or default_storage_url()

    def _enqueue(self, run: TaskRun, kick: bool) -> None:
        self._prepare(run)
        if self.backend.eager:
            if self.token is not None and self.token.cancelled:
                self.cancel_locally([run])
                return
            if bus.active:
                bus.publish(self._created_events([run]))
            assert isinstance(self.backend, SyncBackend)
            if run.local_state is None:
                self.backend.execute(run)
            return
        was_empty = not self.pending
        self.pending.append(run)
        if len(self.pending) >= self.batch_size:
            self.flush()
        elif was_empty and kick:
            self._kick()

    def _prepare(self, run: TaskRun) -> None:
        """Complete the run's call: what its hooks name, its limits, its result policy."""
        spec = run.spec
        if spec is not None:
            options = run.task.options
            if run.task.has_hooks:  # what hooks (alerts) name (a cached property of the task)
                spec.flow_name, spec.panel_url = self.flow_name, self.panel_url
            if options.tags:
                limits = self._limits.get(run.task)
                if limits is None:
                    limits = self._limits[run.task] = limits_for(options.tags)
                spec.limits = limits
            if spec.fail_with is None:
                self._results_of(run)

    def activate(self, run: TaskRun, spec: Any, upstream: list[TaskRun]) -> None:
        """Give a deferred run its call now that its dynamic inputs are known."""
        run.spec = spec
        run.upstream = upstream
        if bus.active:
            edges = self._edges.new_edges([run])
            if edges is not None:
                bus.publish([edges])
        self._enqueue(run, kick=False)
        self.flush()
        assert run.deferred is not None
        with self._activation:
            run.deferred.set()
            callbacks = self._on_activate.pop(run.id, ())
        for callback in callbacks:
            callback()
        self.release()

    def hold(self) -> None:
        """Note dynamic work still to come (a map waiting for its input)."""
        with self._settled:
            self._outstanding += 1

    def release(self) -> None:
        with self._settled:
            self._outstanding -= 1
            self._settled.notify_all()

    def _created_events(self, runs: Sequence[TaskRun]) -> list[Any]:
        now = time.time()
        events: list[Any] = []
        pending = State(StateType.PENDING, now)
        for run in runs:
            events.append(
                TaskRunCreated(
                    run.id,
                    self.flow_run_id,
                    run.task.name,
                    run.run_name,
                    run.map_index,
                    run.task.options.tags,
                    run.key,
                    now,
                )
            )
            events.append(StateChanged(self.flow_run_id, run.id, pending))
        edges = self._edges.new_edges(runs)
        if edges is not None:
            events.append(edges)
        return events

    # -- submission ----------------------------------------------------------------
    def flush(self) -> None:
        """Submit every pending run as one batch.

        Always takes the lock, even with nothing pending: a run another
        thread is submitting right now has its future once this returns.
        """
        with self._flush_lock, collector_paused():  # a batch's objects live on
            batch: list[TaskRun] = []
            pending = self.pending
            while pending:
                batch.append(pending.popleft())
            if not batch:
                return
            if self.token is not None and self.token.cancelled:
                self.cancel_locally(batch)
                return
            if bus.active:
                bus.publish(self._created_events([r for r in batch if r.deferred is None]))
            assert isinstance(self.backend, DistributedBackend)
            self.backend.submit(batch)
            failed = [r for r in batch if r.local_state is not None]
            if failed and bus.active:
                bus.publish([StateChanged(self.flow_run_id, r.id, r.local_state) for r in failed])

    def _kick(self) -> None:
        if self._submitter is None:
            self._submitter = threading.Thread(
                target=self._submit_loop, name="daskflow-submitter", daemon=True
            )
            self._submitter.start()
        with self._wake:
            self._wake.notify()

    def _submit_loop(self) -> None:
        while not self._closed:
            with self._wake:
                self._wake.wait_for(lambda: bool(self.pending) or self._closed)
            if self._closed:
                return
            time.sleep(self.flush_interval)
            try:
                self.flush()
            except Exception:
                logger.exception("daskflow: submitting a batch of task runs failed")

    def ensure_submitted(self, run: TaskRun, timeout: float | None = None) -> bool:
        """Make sure ``run`` is on its way; False if a deferred run is still waiting."""
        deferred = run.deferred
        if deferred is not None and not deferred.wait(self._remaining(timeout)):
            return False
        if run.future is None and not run.has_value and run.local_state is None:
            self.flush()
        return True

    def when_done(self, run: TaskRun, callback: Callable[[TaskRun], None]) -> None:
        """Call ``callback(run)`` once the run has its final state (on some thread)."""
        if run.deferred is not None:
            with self._activation:
                if not run.deferred.is_set():
                    self._on_activate.setdefault(run.id, []).append(
                        lambda: self.when_done(run, callback)
                    )
                    return
        if run.local_state is not None or run.has_value:
            callback(run)
            return
        self.ensure_submitted(run)
        if run.future is None:  # failed to submit
            callback(run)
            return
        run.future.add_done_callback(lambda _: callback(run))

    # -- reading ----------------------------------------------------------------------
    def _remaining(self, timeout: float | None) -> float | None:
        if self.deadline is None:
            return timeout
        left = max(0.0, self.deadline - time.time())
        return left if timeout is None else min(timeout, left)

    def state(self, run: TaskRun) -> State:
        """The run's state now: final if it ended, else the latest reported."""
        final = self.final_state(run)
        if final is not None:
            return final
        return State(run.latest)

    def final_state(self, run: TaskRun) -> State | None:
        if run.local_state is not None:
            return run.local_state
        if run.has_value:
            value = run.value
            if type(value) is TaskFailure:
                return value.state
            return State(StateType.COMPLETED, data=value)
        if isinstance(self.backend, DistributedBackend):
            return self.backend.final_state(run)
        return None

    def wait(self, runs: Sequence[TaskRun], timeout: float | None = None) -> bool:
        """Wait until every run in ``runs`` has a final state; False on timeout.

        Raises
        ------
        FlowRunTimeout
            The flow run's own deadline (``timeout_seconds``) passed first:
            the flow run ends TIMED_OUT, whatever the code waiting does.
        """
        deadline = None if timeout is None else time.time() + timeout
        done = True
        for run in runs:
            left = None if deadline is None else max(0.0, deadline - time.time())
            if not self.ensure_submitted(run, left):
                done = False
                break
        if done and isinstance(self.backend, DistributedBackend):
            left = None if deadline is None else max(0.0, deadline - time.time())
            done = self.backend.wait(runs, self._remaining(left))
        flow_deadline = self.deadline
        if (
            not done
            and flow_deadline is not None
            and (deadline is None or flow_deadline <= deadline)
            and time.time() >= flow_deadline
        ):
            raise FlowRunTimeout(self.flow_name or self.flow_run_id, self.timeout)
        return done

    def result(
        self, run: TaskRun, timeout: float | None = None, raise_on_failure: bool = True
    ) -> Any:
        """The run's value; raise (or return) its exception if it failed."""
        if run.local_state is None and run.has_value and type(run.value) is not TaskFailure:
            # it ran in this thread (cluster="sync"): the value, without a State around it
            run.handled = True
            value = run.value
            resolve = getattr(value, "_daskflow_resolve_", None)
            return resolve() if resolve is not None else value
        if not self.wait([run], timeout):
            raise TimeoutError(f"task run {run.run_name!r} did not finish within {timeout} s")
        run.handled = True
        future = run.future
        if (
            isinstance(self.backend, DistributedBackend)
            and future is not None
            and future.status == "finished"
            and future.type is not TaskFailure
        ):
            return self.backend.result(run, None)
        state = self.final_state(run)
        assert state is not None
        return state.result(raise_on_failure=raise_on_failure)

    def outcome(self, run: TaskRun) -> State:
        """Wait for ``run`` and return its final state (``t(x, return_state=True)``).

        A completed state carries the value (``state.result()``), a failed one
        its exception; nothing is raised for the run's own failure. A run that
        reported ``CACHED`` reads as such.
        """
        self.wait([run])
        run.handled = True
        state = self.final_state(run)
        assert state is not None
        if state.type is not StateType.COMPLETED:
            return state
        if run.final_event is None and isinstance(self.backend, DistributedBackend):
            # the value came first; the worker's report (CACHED? its message?) follows it
            deadline = time.monotonic() + _REPORT_WAIT
            while run.final_event is None and time.monotonic() < deadline:
                time.sleep(0.005)
        if run.final_event is None:
            return state
        return event_state(run.final_event).with_data(state.data)

    def returned_state(self, run: TaskRun) -> State | None:
        """The failed state ``run``'s task returned (``return Failed(...)``), if it did."""
        failure = run.value if run.has_value else run.failure
        if type(failure) is TaskFailure and failure.returned:
            return failure.state
        return None

    def results(self, runs: Sequence[TaskRun], raise_on_failure: bool = True) -> list[Any]:
        """Values of many runs, gathered from the cluster in one call."""
        if not self.wait(runs):
            raise TimeoutError(f"{len(runs)} task run(s) did not finish in time")
        for run in runs:
            run.handled = True
        if isinstance(self.backend, DistributedBackend):
            ok = [
                r
                for r in runs
                if r.future is not None
                and r.future.status == "finished"
                and r.future.type is not TaskFailure
            ]
            values = dict(zip((r.id for r in ok), self.backend.results(ok), strict=True))
        else:
            values = {}
        out = []
        for run in runs:
            if run.id in values:
                out.append(values[run.id])
            else:
                state = self.final_state(run)
                assert state is not None
                out.append(state.result(raise_on_failure=raise_on_failure))
        return out

    def length(self, run: TaskRun) -> int:
        """How many elements a completed run's value has (for a dynamic map)."""
        if run.size is not None:
            return run.size
        if isinstance(self.backend, DistributedBackend) and run.future is not None:
            return self.backend.length(run)  # the events may not be here yet
        value = self.result(run)
        return len(value) if hasattr(value, "__len__") else len(list(value))

    # -- events from workers ----------------------------------------------------------
    def on_task_events(self, events: list[tuple[Any, ...]]) -> None:
        """Apply worker events (on the client's event loop: keep this cheap)."""
        by_id = self.by_id
        changes: list[Any] = []
        publish = bus.active
        for event in events:
            if event[2] == LOG:
                if publish:
                    changes.append(LogEmitted(*event[:2], *event[3:7]))
                continue
            if event[2] in ARTIFACT_KINDS:
                if publish:
                    changes.append(artifact_event(event))
                continue
            if event[2] == CREATED:  # a run a task run started (engine.nesting)
                self._nested_created(event, changes if publish else None)
                continue
            run = by_id.get(event[1])
            if run is None:
                continue
            state_type = STATE_TYPES[event[2]]
            if run.worker is not None and event[5] != run.worker:  # it left a worker (rare)
                from daskflow.engine.worker_loss import moved

                self.placements = moved(self.placements, run)
            run.latest = state_type
            run.attempt = event[4]
            run.worker = event[5]
            if run.started is None and state_type is StateType.RUNNING:
                run.started = event[3]
            if state_type.is_final:
                run.final_event = event
                if event[11] and NESTED_RUNS in event[11]:  # it started nested runs
                    self.nested_expected += event[11][NESTED_RUNS]
                if event[10] is not None:
                    run.size = event[10]
                if run.started is not None and state_type is StateType.COMPLETED:
                    durations.note(run.task.name, event[3] - run.started)
            if publish:
                changes.append(
                    StateChanged(
                        self.flow_run_id,
                        run.id,
                        event_state(event),
                        event[4],
                        event[5],
                        event[11] or {},
                    )
                )
        if changes:
            bus.publish(changes)

    def _nested_created(self, event: tuple[Any, ...], changes: list[Any] | None) -> None:
        """Track a nested run from its announcement (see :mod:`daskflow.engine.nesting`)."""
        if event[1] in self.by_id:  # announced again: a retried chunk, a recomputed key
            return
        run = nested_run(event)
        self.by_id[run.id] = run
        self.nested.append(run)
        if changes is not None:
            changes.extend(created_events(self.flow_run_id, event))

    def cancel_locally(self, runs: Sequence[TaskRun]) -> None:
        """End runs that never reached the cluster CANCELLED."""
        publish = bus.active
        created = self._created_events([r for r in runs if r.deferred is None]) if publish else []
        reason = self.token.reason if self.token is not None else None
        state = State(StateType.CANCELLED, message=reason or "the flow run ended first")
        for run in runs:
            run.local_state = state
        if publish:
            bus.publish([*created, *(StateChanged(self.flow_run_id, r.id, state) for r in runs)])

    # -- the end of the flow ---------------------------------------------------------
    def settle(self, timeout: float | None = None) -> bool:
        """Wait for every run, including ones still to come from dynamic maps."""
        deadline = None if timeout is None else time.time() + timeout
        while True:
            self.flush()
            left = None if deadline is None else max(0.0, deadline - time.time())
            if not self.wait(list(self.runs), left):
                return False
            with self._settled:
                left = None if deadline is None else max(0.0, deadline - time.time())
                if not self._settled.wait_for(lambda: self._outstanding == 0, left):
                    return False
            if not self.pending and all(self.final_state(r) is not None for r in self.runs):
                return True

    def cancel_all(self) -> None:
        """Cancel runs still waiting here or on the cluster (they end CANCELLED).

        Takes the submission lock: a batch on its way is either cancelled on
        the cluster with the rest or never sent.
        """
        with self._flush_lock:
            waiting: list[TaskRun] = []
            while self.pending:
                waiting.append(self.pending.popleft())
            if waiting:
                self.cancel_locally(waiting)
            if isinstance(self.backend, DistributedBackend):
                self.backend.cancel(self.runs)
        cancelled = self.token is not None and self.token.cancelled
        if cancelled and isinstance(self.backend, DistributedBackend):
            self.backend.tell_cancelled(self.flow_run_id)  # running code that can stop

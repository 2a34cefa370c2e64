"""Task runs started by a task run: call, submit and map inside a task (Prefect 3).

Inside a running task, ``other(x)``, ``other.submit(x)`` and ``other.map(xs)``
make *nested* task runs: runs of the same flow run, recorded with their
parent task run. The task run that starts the first of them gets a
:class:`NestedRunner`, the flow's own engine (:class:`~daskflow.engine.runner.FlowRunner`)
working from where the parent runs:

- **A direct call** runs inline, in the parent's thread, as Prefect 3 runs
  it: the attempt wrapper is called here, with the task's retries, timeout,
  caching and hooks, and its value (or exception) comes back at once. No
  round trip: a task calling a helper task stays as cheap as a function call.
- **``.submit`` and ``.map``** go to the cluster the parent runs on, through
  the worker's own client (``distributed.get_client()`` on a worker), as one
  graph per call. While the parent waits on their results its worker thread
  is given back to the worker (``secede``) and taken again afterwards
  (``rejoin``), so waiting never deadlocks a worker, even one of one thread.
  Outside a worker (``cluster="sync"``, a bare task run in the calling
  thread) they run at once in this thread, one after another.

A parent task run does not end before the runs it started: after its
function returned (or raised), it waits for those still going. A failed
nested run the parent never looked at does not fail the parent, nor the flow
run: it is the parent's business, as in Prefect.

The flow run learns of nested runs from the runs themselves: each announces
itself where it runs (:mod:`daskflow.engine.nesting`), so their records,
states and logs reach the flow run's history like those of any task run,
with nothing sent per run from the flow's process. Concurrency limits on
tags apply to the runs a flow starts: a nested run runs within its parent's
slots (waiting for a slot its parent holds would never end).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from daskflow.engine.attempt import TaskFailure, run_task
from daskflow.engine.backends import DistributedBackend, SyncBackend, _Router
from daskflow.engine.current import route
from daskflow.engine.emit import current_worker
from daskflow.engine.runner import FlowRunner
from daskflow.engine.runs import TaskRun
from daskflow.engine.task_context import TaskRunContext

__all__ = ["NestedRunner", "nested_runner"]


def nested_runner(context: TaskRunContext) -> NestedRunner:
    """The runner of the nested runs of the task run ``context`` (made on first use)."""
    runner = context.nested
    if runner is None:
        runner = context.nested = NestedRunner(context.spec)
    assert isinstance(runner, NestedRunner)
    return runner


_seceded = threading.local()
_connecting = threading.Lock()


def worker_client(worker: Any) -> Any:
    """The worker's client of its scheduler, for the nested runs of its tasks (one per worker).

    As ``distributed.get_client()`` makes it on a worker, but never made the
    process's default client: in a cluster of threads (``processes=False``)
    that would send the flows this process calls later, with no cluster of
    their own, to this cluster instead of the embedded one. It is closed
    with the process's last worker, like the clients distributed makes.
    """
    client = getattr(worker, "_daskflow_client", None)
    if client is not None and client.status in ("running", "connecting", "newly-created"):
        return client
    with _connecting:
        client = getattr(worker, "_daskflow_client", None)
        if client is not None and client.status in ("running", "connecting", "newly-created"):
            return client
        from distributed import Client, Worker

        client = Client(
            worker.scheduler.address,
            loop=worker.loop,
            security=worker.security,
            set_as_default=False,
            asynchronous=False,
            direct_to_workers=True,
            name="daskflow-worker",
        )
        Worker._initialized_clients.add(client)
        worker._daskflow_client = client
        return client


@contextlib.contextmanager
def _given_back() -> Iterator[None]:
    """Give this worker thread's slot back while the block waits (once, however nested)."""
    depth = getattr(_seceded, "depth", 0)
    if depth == 0:
        from distributed import rejoin, secede

        secede()
    _seceded.depth = depth + 1
    try:
        yield
    finally:
        _seceded.depth = depth
        if depth == 0:
            rejoin()


class WorkerBackend(DistributedBackend):
    """The cluster a task runs on, seen from that task: the worker's client.

    It submits like the flow's backend does (one graph per batch), but
    hears no events (the flow's process does: the nested runs announce
    themselves) and gives its worker thread back while it waits.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self._router = _Router(route, client)

    def panel_url(self, flow_run_id: str) -> str | None:
        return None

    def workers_lost(self) -> int | None:
        return None

    def wait(self, runs: Sequence[TaskRun], timeout: float | None) -> bool:
        with _given_back():
            return super().wait(runs, timeout)

    def result(self, run: TaskRun, timeout: float | None) -> Any:
        with _given_back():
            return super().result(run, timeout)

    def results(self, runs: Sequence[TaskRun]) -> list[Any]:
        with _given_back():
            return super().results(runs)

    def length(self, run: TaskRun) -> int:
        with _given_back():
            return super().length(run)


class _NoEdges:
    """Nested runs draw no edges of the flow's graph."""

    def new_edges(self, runs: Sequence[TaskRun]) -> None:
        return None


class NestedRunner(FlowRunner):
    """Creates, submits and waits for the nested runs of one task run.

    Parameters
    ----------
    spec
        The parent task run's :class:`~daskflow.engine.call.CallSpec`: its
        flow run is the nested runs' flow run, its id their parent.
    """

    def __init__(self, spec: Any) -> None:
        worker = current_worker()
        backend: SyncBackend | DistributedBackend
        backend = SyncBackend(route) if worker is None else WorkerBackend(worker_client(worker))
        super().__init__(spec.flow_run_id, backend)
        self.parent_task_run_id: str = spec.task_run_id
        self.flow_name = spec.flow_name
        self._edges = _NoEdges()  # type: ignore[assignment]

    # -- creating runs: each announces itself where it runs ------------------------
    def _prepare(self, run: TaskRun) -> None:
        if run.spec is not None:
            run.spec.parent = self.parent_task_run_id
        super()._prepare(run)
        if run.spec is not None:
            run.spec.limits = ()  # the parent's slots cover it (see the module docstring)

    def _created_events(self, runs: Sequence[TaskRun]) -> list[Any]:
        return []

    def _kick(self) -> None:
        """Nothing: ``submit`` and ``map`` flush their graph as they return."""

    def when_done(self, run: TaskRun, callback: Callable[[TaskRun], None]) -> None:
        """Wait for ``run`` here (the thread is given back), then call ``callback``.

        A nested map over a future expands at once, in the parent's thread,
        instead of from a callback on the client's event loop, where the
        wait it needs could not happen.
        """
        self.wait([run])
        callback(run)

    # -- a direct call: inline, as Prefect 3 runs it --------------------------------
    def run_inline(self, run: TaskRun) -> Any:
        """Run ``run`` in this thread now and return its value (or raise its error)."""
        self._prepare(run)
        assert run.spec is not None
        self.runs.append(run)
        self.by_id[run.id] = run
        self.wait(run.upstream)
        upstream = [self._value_of(up) for up in run.upstream]
        upstream.extend(reversed(run.spec.data))  # large arguments: see DataSlot
        run.value = run_task(run.spec, *upstream)
        return self.result(run)

    def _value_of(self, run: TaskRun) -> Any:
        """What the wrapper receives for an upstream run: its value or its ``TaskFailure``."""
        if run.has_value:
            return run.value
        if run.future is not None and isinstance(self.backend, DistributedBackend):
            with _given_back():
                return run.future.result()
        state = self.final_state(run)
        assert state is not None
        return state.data if state.is_completed() else TaskFailure(state, run.run_name)

    # -- the parent's end --------------------------------------------------------------
    def finish(self) -> None:
        """Wait for every nested run still going, then let the cluster forget them."""
        try:
            self.settle()
        finally:
            if isinstance(self.backend, DistributedBackend):
                self.backend.release(self.runs)

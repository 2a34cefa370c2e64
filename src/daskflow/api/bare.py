"""Task calls outside any flow: tracked task runs of no flow run (Prefect 3).

Outside a flow, ``t(x)`` runs the task in the calling thread as a recorded
task run, with its retries, timeout, caching, hooks and logs, and returns its
value (or raises its exception). No cluster starts: trying tasks one by one
in a notebook costs what the function costs, plus a few store rows written
in the background. ``t.submit(x)`` and ``t.map(xs)`` run on the default
cluster (the active ``distributed.Client``, else the embedded one) and return
futures at once.

Each call gets a :class:`~daskflow.engine.runner.FlowRunner` of its own, the
same engine a flow uses, under an id that starts with
:data:`~daskflow.store.base.BARE_PREFIX` and
has no flow-run record: the store keeps the task run with that id in its
``flow_run_id`` column, and the records read back (:func:`task_runs`) say
``flow_run_id is None``. A runner for ``.submit``/``.map`` hears its runs'
events until they all ended, then concludes them as a flow run's end does.

A task called inside a bare task run is a nested run of it, recorded with
it as its parent (:mod:`daskflow.engine.nested`, as inside a flow). Where
tracking does not apply, the call is the plain function: config
``daskflow.track-bare-tasks: false``, and code on a Dask worker outside any
task run.
"""

from __future__ import annotations

import sys
import threading
import uuid
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from daskflow import config
from daskflow.api.futures import MappedFuture, TaskFuture
from daskflow.engine.backends import SyncBackend
from daskflow.engine.conclusion import conclude
from daskflow.engine.countdown import after_all
from daskflow.engine.current import route
from daskflow.engine.run_logs import current_task_run
from daskflow.engine.runner import FlowRunner, make_backend
from daskflow.engine.runs import TaskRun
from daskflow.store.base import BARE_PREFIX

if TYPE_CHECKING:
    from daskflow.api.task import Task

__all__ = ["call", "map_bare", "submit", "tracked"]


def tracked() -> bool:
    """Whether a task called here, outside any flow, runs as a tracked task run."""
    if not config.get("track-bare-tasks", True):
        return False
    if current_task_run.get() is not None:
        return False  # inside a task run: a nested run of it (api.task), never a bare one
    return not _on_worker()


def _on_worker() -> bool:
    if "distributed" not in sys.modules:
        return False
    from distributed.worker import get_worker

    try:
        get_worker()
    except ValueError:
        return False
    return True


def _runner(backend: Any) -> FlowRunner:
    from daskflow.store import default_observer

    default_observer()  # bare task runs are recorded like any other
    runner = FlowRunner(f"{BARE_PREFIX}{uuid.uuid4().hex[:27]}", backend)
    runner.persist_result = None
    return runner


def call(
    task: Task[Any, Any],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    wait_for: Sequence[Any] | None = None,
    return_state: bool = False,
) -> Any:
    """Run ``task(*args, **kwargs)`` here as a tracked task run; its value (or final State)."""
    from daskflow.api.task import outcome_of

    for dep in wait_for or ():  # futures of other runners: wait here, then run
        getattr(getattr(dep, "value", dep), "wait", lambda: None)()
    runner = _runner(SyncBackend(route))
    with runner:
        run = task._create(runner, args, kwargs, None, kick=False)
        return outcome_of(runner, run, return_state)


def submit(
    task: Task[Any, Any],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    wait_for: Sequence[Any] | None,
) -> TaskFuture[Any]:
    """Start one tracked task run on the default cluster; its future."""
    runner = _runner(make_backend(None))
    with _Listening(runner) as listening:
        run = task._create(runner, args, kwargs, wait_for)
        listening.watch([run])
    future: TaskFuture[Any] = TaskFuture(run, runner)
    run.handle = weakref.ref(future)
    return future


def map_bare(
    task: Task[Any, Any],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    wait_for: Sequence[Any] | None,
) -> MappedFuture[Any]:
    """One tracked task run per element, on the default cluster; their futures."""
    from daskflow.api.mapping import map_task

    runner = _runner(make_backend(None))
    with _Listening(runner) as listening:
        mapped = map_task(task, runner, args, kwargs, wait_for)
        runs = mapped._expanded_runs()
        if runs is None:  # mapping over a future: its runs exist once it completed
            mapped._on_expand(lambda: listening.watch(mapped._expanded_runs() or []))
        else:
            listening.watch(runs)
    return mapped


class _Listening:
    """Hear a bare runner's worker events until all its runs ended, then conclude.

    The runner is not the current flow run of the caller's code (the caller
    is no flow); it only receives the events of its own runs, and publishes
    their final states, the way a flow run's end does
    (:meth:`FlowRunner.conclude`), once the last of them is done.
    """

    def __init__(self, runner: FlowRunner) -> None:
        self.runner = runner

    def __enter__(self) -> _Listening:
        self.runner.listen()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is not None:
            self.runner.stop_listening()
            return
        self.runner.flush()  # submitted now: nothing else will wait on it
        if self.runner.backend.eager:  # "sync" configured: every run ended already
            self._conclude()

    def watch(self, runs: list[TaskRun]) -> None:
        if self.runner.backend.eager:
            return
        if not runs:
            self.runner.stop_listening()
        # drain_events blocks on the client's loop: not on the callback's thread
        all_done = after_all(len(runs), self._conclude_in_background)
        for run in runs:
            self.runner.when_done(run, all_done)

    def _conclude_in_background(self) -> None:
        threading.Thread(target=self._conclude, name="daskflow-bare", daemon=True).start()

    def _conclude(self) -> None:
        try:
            conclude(self.runner)
        finally:
            self.runner.stop_listening()

"""Futures returned inside a flow: ``TaskFuture``, ``MappedFuture``, ``wait``.

A :class:`TaskFuture` is the user's handle on one task run; a
:class:`MappedFuture` the handle on the runs of one ``.map`` — a sequence of
``TaskFuture`` that can also be passed whole as an argument (fan-in). A map
whose width is known only at run time (it maps over a future) starts
unexpanded: it fills in when its input completes, without blocking the flow.

Looking at a run's outcome (``.result()``, ``.state``, ``.wait()``) marks it
handled: a failure the flow function looked at does not fail the flow by
itself, one it never looked at does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any, Generic, NamedTuple, TypeVar, overload

from daskflow.engine.call import fields_of, with_fields
from daskflow.engine.runner import FlowRunner
from daskflow.engine.runs import TaskRun
from daskflow.errors import FlowRunTimeout
from daskflow.graph.arguments import RunGroupRef, RunRef
from daskflow.states import State
from daskflow.tracebacks import user_frames

__all__ = ["DoneAndNotDone", "MappedFuture", "TaskFuture", "resolve_futures", "wait"]

R = TypeVar("R")


class TaskFuture(RunRef, Generic[R]):
    """The future result of one task run, returned by ``Task.submit``."""

    __slots__ = ("__weakref__", "_run", "_runner")

    def __init__(self, run: TaskRun, runner: FlowRunner) -> None:
        self._run = run
        self._runner = runner

    @property
    def task_run_id(self) -> str:
        """The id of the task run (as recorded in the run history)."""
        return self._run.id

    @property
    def key(self) -> Any:
        """The Dask key of the task run (as shown on the Dask dashboard)."""
        return self._run.key

    @property
    def state(self) -> State:
        """The run's current state (final once it ended)."""
        state = self._runner.state(self._run)
        if state.is_final():
            self._run.handled = True
        return state

    @user_frames
    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> R:
        """Wait for the run and return its value.

        Parameters
        ----------
        timeout
            Seconds to wait at most; ``TimeoutError`` after that.
        raise_on_failure
            When False, a failed run returns its exception instead of raising.
        """
        return self._runner.result(self._run, timeout, raise_on_failure)

    def wait(self, timeout: float | None = None) -> None:
        """Wait until the run ended (whatever its outcome)."""
        self._runner.wait([self._run], timeout)
        self._run.handled = True

    def __await__(self) -> Generator[Any, None, R]:
        """``await future``: its value, without blocking the event loop (async flows)."""
        from daskflow.engine.aio import wait_run

        return wait_run(self._runner, self._run).__await__()

    def __repr__(self) -> str:
        return f"<TaskFuture {self._run.run_name} {self._run.latest.value}>"


class MappedFuture(RunGroupRef, Sequence[TaskFuture[R]]):
    """The futures of one ``Task.map``: a sequence of :class:`TaskFuture`.

    Passed as an argument, the downstream task receives the list of values.
    """

    __slots__ = ("_futures", "_listeners", "_lock", "_ready", "_runner", "_source", "_task_name")

    def __init__(
        self, runner: FlowRunner, task_name: str, futures: list[TaskFuture[R]] | None = None
    ) -> None:
        self._runner = runner
        self._task_name = task_name
        self._futures = futures
        self._source: TaskRun | None = None
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []
        if futures is not None:
            self._ready.set()

    # -- expansion (dynamic maps) -----------------------------------------------
    def _expanded_runs(self) -> list[TaskRun] | None:
        futures = self._futures
        return None if futures is None else [f._run for f in futures]

    def _failed_source(self) -> TaskRun | None:
        return self._source

    def _expand(self, futures: list[TaskFuture[R]], failed_source: TaskRun | None = None) -> None:
        with self._lock:
            self._futures = futures
            self._source = failed_source
            self._ready.set()
            listeners, self._listeners = self._listeners, []
        for listener in listeners:
            listener()

    def _on_expand(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if self._futures is None:
                self._listeners.append(callback)
                return
        callback()

    def _all(self) -> list[TaskFuture[R]]:
        if self._futures is None:
            self._runner.flush()
            self._ready.wait(self._runner._remaining(None))
        if self._futures is None:  # only the flow run's deadline ends the wait above
            raise FlowRunTimeout(self._runner.flow_name or self._runner.flow_run_id, None)
        return self._futures

    # -- the Sequence protocol ---------------------------------------------------
    def __len__(self) -> int:
        return len(self._all())

    @overload
    def __getitem__(self, index: int) -> TaskFuture[R]: ...
    @overload
    def __getitem__(self, index: slice) -> list[TaskFuture[R]]: ...
    def __getitem__(self, index: int | slice) -> TaskFuture[R] | list[TaskFuture[R]]:
        return self._all()[index]

    def __iter__(self) -> Iterator[TaskFuture[R]]:
        return iter(self._all())

    # -- outcomes ----------------------------------------------------------------
    @user_frames
    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> list[R]:
        """Every element's value, gathered from the cluster in one call."""
        futures = self._all()
        source = self._source
        if source is not None:
            source.handled = True
            return [self._runner.result(source, timeout, raise_on_failure)]
        runs = [f._run for f in futures]
        if not self._runner.wait(runs, timeout):
            raise TimeoutError(f"{self._task_name}.map did not finish within {timeout} s")
        return self._runner.results(runs, raise_on_failure)

    def __await__(self) -> Generator[Any, None, list[R]]:
        """``await mapped``: every element's value, without blocking the event loop."""
        return self._values().__await__()

    async def _values(self) -> list[R]:
        from daskflow.engine.aio import wait_runs

        runs = self._expanded_runs()
        if runs is None or self._source is not None:  # a dynamic map: wait for its width
            import asyncio

            return await asyncio.to_thread(self.result)
        return await wait_runs(self._runner, runs)

    def wait(self, timeout: float | None = None) -> None:
        """Wait until every element ended."""
        runs = [f._run for f in self._all()]
        self._runner.wait(runs, timeout)
        for run in runs:
            run.handled = True

    @property
    def states(self) -> list[State]:
        """The state of every element."""
        return [f.state for f in self._all()]

    def __repr__(self) -> str:
        width = "?" if self._futures is None else len(self._futures)
        return f"<MappedFuture {self._task_name} x{width}>"


class DoneAndNotDone(NamedTuple):
    """What :func:`wait` returns."""

    done: set[TaskFuture[Any]]
    not_done: set[TaskFuture[Any]]


def wait(
    futures: Sequence[TaskFuture[Any]] | MappedFuture[Any], timeout: float | None = None
) -> DoneAndNotDone:
    """Wait until the given futures ended (whatever their outcome).

    Examples
    --------
    >>> done, not_done = daskflow.wait([a, b], timeout=10)  # doctest: +SKIP
    """
    flat: list[TaskFuture[Any]] = []
    for item in futures:
        if isinstance(item, MappedFuture):
            flat.extend(item)
        else:
            flat.append(item)
    if not flat:
        return DoneAndNotDone(set(), set())
    runner = flat[0]._runner
    runner.wait([f._run for f in flat], timeout)
    done, not_done = set(), set()
    for f in flat:
        if runner.final_state(f._run) is not None:
            f._run.handled = True
            done.add(f)
        else:
            not_done.add(f)
    return DoneAndNotDone(done, not_done)


def resolve_futures(obj: Any) -> Any:
    """``obj`` with every future replaced by its value.

    Futures are looked for in lists, tuples, dicts, sets and the fields of
    dataclasses and pydantic models (copied with the values, never changed).
    """
    if isinstance(obj, TaskFuture):
        return obj.result()
    if isinstance(obj, MappedFuture):
        return obj.result()
    typ = type(obj)
    if typ in (list, tuple, set, frozenset):
        return typ(resolve_futures(v) for v in obj)
    if typ is dict:
        return {k: resolve_futures(v) for k, v in obj.items()}
    names = fields_of(typ)
    if names:
        changed = {}
        for name in names:
            value = getattr(obj, name, None)
            resolved = resolve_futures(value)
            if resolved is not value:
                changed[name] = resolved
        return with_fields(obj, changed) if changed else obj
    return obj

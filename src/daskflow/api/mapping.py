"""``Task.map``: one task run per element, for widths known now or at run time.

Each argument of a map is either *mapped* (a list or other iterable, a
``MappedFuture``, or a ``TaskFuture`` whose value will be the iterable) or
*static* (``unmapped(x)``, strings, dicts, other single values). When every
mapped width is known the map expands at once. Otherwise it is returned
unexpanded and expands from a callback when its inputs complete — the flow
function is not blocked, and element ``i`` of a chained map depends only on
element ``i`` upstream, so it starts as soon as that one is done.

A call that takes an unexpanded map whole (a fan-in) is *deferred* the same
way: its future exists at once, its Dask task is submitted on expansion.
"""

from __future__ import annotations

import inspect
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from daskflow.api.futures import MappedFuture, TaskFuture
from daskflow.engine.call import CallSpec
from daskflow.engine.collector_pause import collector_paused
from daskflow.engine.countdown import after_all
from daskflow.engine.enlist import open_transaction
from daskflow.engine.runner import FlowRunner
from daskflow.engine.runs import TaskRun
from daskflow.errors import ConfigurationError, MapLengthError
from daskflow.graph.arguments import Collector, RunGroupRef, RunItem, Walked, build_call, unmapped

__all__ = ["defer_call", "map_task"]

_STATIC = (str, bytes, bytearray, Mapping)


def _is_mapped(value: Any) -> bool:
    if isinstance(value, (unmapped, *_STATIC)):
        return False
    if isinstance(value, (TaskFuture, MappedFuture)):
        return True
    if type(value).__name__ == "DataFrame":  # pandas/Dask frames iterate over columns: keep whole
        return False
    return isinstance(value, Iterable)


def _parameter_names(fn: Any, args: Sequence[Any]) -> list[str]:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return [f"argument {i}" for i in range(len(args))]
    names = []
    for i in range(len(args)):
        if i < len(params) and params[i].kind not in (params[i].VAR_POSITIONAL,):
            names.append(params[i].name)
        else:
            names.append(f"argument {i}")
    return names


class _Map:
    """One ``.map`` call until it has expanded."""

    def __init__(
        self,
        task: Any,
        runner: FlowRunner,
        args: Sequence[Any],
        kwargs: dict[str, Any],
        wait_for: Sequence[Any] | None,
    ) -> None:
        self.task = task
        self.runner = runner
        self.args = list(args)
        self.kwargs = dict(kwargs)
        self.wait_for = wait_for
        names = _parameter_names(task.fn, args)
        self.mapped: dict[int | str, Any] = {}
        self.names: dict[int | str, str] = {}
        for i, value in enumerate(args):
            if _is_mapped(value):
                self.mapped[i] = (
                    value if isinstance(value, (TaskFuture, MappedFuture)) else list(value)
                )
                self.names[i] = names[i]
        for key, value in kwargs.items():
            if _is_mapped(value):
                self.mapped[key] = (
                    value if isinstance(value, (TaskFuture, MappedFuture)) else list(value)
                )
                self.names[key] = key
        if not self.mapped:
            raise ConfigurationError(
                f"{task.name}.map arguments", tuple(args), "at least one iterable to map over"
            )
        self.future: MappedFuture[Any] = MappedFuture(runner, task.name)

    def waiting_on(self) -> list[Any]:
        """Inputs whose width or value is not known yet."""
        found: list[Any] = []
        for value in self.mapped.values():
            unknown_width = isinstance(value, MappedFuture) and value._expanded_runs() is None
            unknown_value = (
                isinstance(value, TaskFuture) and self.runner.final_state(value._run) is None
            )
            if unknown_width or unknown_value:
                found.append(value)
        probe = Collector()
        for value in [*self.args, *self.kwargs.values(), *(self.wait_for or ())]:
            if not isinstance(value, (TaskFuture, MappedFuture)) or not _is_mapped(value):
                probe.walk(value)
        found.extend(g for g in probe.dynamic if g not in found)
        return found

    def expand(self, dynamic: bool) -> None:
        runner = self.runner
        lengths: dict[str, int] = {}
        for position, value in self.mapped.items():
            if isinstance(value, MappedFuture):
                source = value._failed_source()
                if source is not None:
                    return self.future._expand([], failed_source=source)
                lengths[self.names[position]] = len(value._futures or ())
            elif isinstance(value, TaskFuture):
                state = runner.final_state(value._run)
                if state is None or not state.is_completed():
                    return self.future._expand([], failed_source=value._run)
                lengths[self.names[position]] = runner.length(value._run)
            else:
                lengths[self.names[position]] = len(value)
        if len(set(lengths.values())) > 1:
            error = MapLengthError(self.task.name, lengths)
            if not dynamic:
                raise error
            return self.future._expand([], failed_source=self._failing_run(error))
        width = next(iter(lengths.values()))
        with collector_paused():  # thousands of objects that live on (see the module)
            self.future._expand(self._element_futures(width))

    def _element_futures(self, width: int) -> list[TaskFuture[Any]]:
        runner, task = self.runner, self.task
        base = Collector()
        args: list[Any] = []
        for i, value in enumerate(self.args):
            args.append(None if i in self.mapped else Walked(*base.walk(value)))
        kwargs = {
            k: None if k in self.mapped else Walked(*base.walk(v)) for k, v in self.kwargs.items()
        }
        for dep in self.wait_for or ():
            base.walk(dep)
        group = f"{task._key_name}-{uuid.uuid4().hex[:8]}"
        mapped = [(pos, self._element_source(value)) for pos, value in self.mapped.items()]
        futures: list[TaskFuture[Any]] = []
        for index in range(width):
            for position, element in mapped:
                if isinstance(position, int):
                    args[position] = element(index)
                else:
                    kwargs[position] = element(index)
            run_id = runner.new_id()
            run_name = (
                f"{task.name}-{index}"
                if task.options.task_run_name is None
                else task.run_name(self._raw_args(index), self._raw_kwargs(index), index)
            )
            spec, upstream = build_call(
                base.copy(), task, runner.flow_run_id, run_id, run_name, index, args, kwargs
            )
            run = TaskRun(run_id, (group, index), task, run_name, index, spec, upstream)
            runner.add(run)
            futures.append(TaskFuture(run, runner))
        return futures

    @staticmethod
    def _element_source(value: Any) -> Any:
        if isinstance(value, MappedFuture):
            futures = value._futures or []
            return futures.__getitem__
        if isinstance(value, TaskFuture):
            run = value._run
            return lambda i: RunItem(run, i)
        return value.__getitem__

    def _raw_args(self, index: int) -> list[Any]:
        return [
            (v[index] if isinstance(v, list) else v) if i in self.mapped else v
            for i, v in enumerate(self.args)
        ]

    def _raw_kwargs(self, index: int) -> dict[str, Any]:
        return {
            k: (v[index] if isinstance(v, list) else v) if k in self.mapped else v
            for k, v in self.kwargs.items()
        }

    def _failing_run(self, error: BaseException) -> TaskRun:
        """A run that records the map's failure to expand (and fails its consumers)."""
        runner, task = self.runner, self.task
        run_id = runner.new_id()
        spec = CallSpec(
            task, runner.flow_run_id, run_id, f"{task.name}-map", None, (), {}, fail_with=error
        )
        run = TaskRun(run_id, f"{task._key_name}-{run_id}", task, spec.run_name, None, spec, [])
        runner.add(run)
        runner.flush()
        return run


def _when_all_ready(runner: FlowRunner, inputs: list[Any], callback: Any) -> None:
    """Call ``callback()`` once every input (future or map) is known."""
    one_ready = after_all(len(inputs), callback)
    for item in inputs:
        if isinstance(item, TaskFuture):
            runner.when_done(item._run, one_ready)
        else:
            item._on_expand(one_ready)


def map_task(
    task: Any,
    runner: FlowRunner,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    wait_for: Sequence[Any] | None,
) -> MappedFuture[Any]:
    """Create the runs of ``task.map(*args, **kwargs)`` (see the module docstring)."""
    call = _Map(task, runner, args, kwargs, wait_for)
    waiting = call.waiting_on()
    if not waiting:
        call.expand(dynamic=False)
        return call.future
    runner.hold()
    transaction = open_transaction.get()
    if transaction is not None:  # its runs join the transaction when the map expands
        transaction.enlist_map(runner, call.future)

    def ready() -> None:
        try:
            call.expand(dynamic=True)
            runner.flush()
        finally:
            runner.release()

    _when_all_ready(runner, waiting, ready)
    return call.future


def defer_call(
    runner: FlowRunner,
    run: TaskRun,
    dynamic: list[RunGroupRef],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    wait_for: Sequence[Any] | None,
) -> None:
    """Register ``run`` now; build and submit its call once ``dynamic`` expanded."""
    run.deferred = threading.Event()
    run.spec = None
    runner.add(run)

    def ready() -> None:
        spec, upstream = build_call(
            Collector(),
            run.task,
            runner.flow_run_id,
            run.id,
            run.run_name,
            None,
            args,
            kwargs,
            wait_for,
        )
        runner.activate(run, spec, upstream)

    _when_all_ready(runner, list(dynamic), ready)

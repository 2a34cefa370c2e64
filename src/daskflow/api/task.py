"""``@task``: a function daskflow runs as tracked task runs on Dask.

Inside a flow, ``t(...)`` runs the task and returns its value, ``t.submit(...)``
returns a :class:`~daskflow.api.futures.TaskFuture` at once, ``t.map(...)`` a
:class:`~daskflow.api.futures.MappedFuture`. Outside a flow they do the same
as tracked task runs of no flow run (:mod:`daskflow.api.bare`). Inside a
running task they make nested runs of the same flow run, recorded with
their parent (:mod:`daskflow.engine.nested`: a call runs inline, ``submit``
and ``map`` go to the cluster). ``t.fn`` is always the plain function. The
mapping machinery (static and dynamic widths) lives in :mod:`daskflow.api.mapping`.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import os
import re
import sys
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

import cloudpickle

from daskflow.api.tags import current_tags
from daskflow.engine.attempt import TaskFailure
from daskflow.engine.current import current_runner
from daskflow.engine.runs import TaskRun
from daskflow.engine.task_context import current_task_run
from daskflow.errors import NoFlowRunError, NotATaskError
from daskflow.graph.arguments import Collector, build_call
from daskflow.options import TaskOptions, with_changes
from daskflow.tracebacks import code_files

if TYPE_CHECKING:
    # a worker unpickling a task needs none of these: imported where a task is called
    from daskflow.api.futures import MappedFuture, TaskFuture
    from daskflow.cache_policies import CachePolicy
    from daskflow.engine.nested import NestedRunner
    from daskflow.engine.runner import FlowRunner

__all__ = ["Task", "task"]

P = ParamSpec("P")
R = TypeVar("R")

_KEY_UNSAFE = re.compile(r"[^A-Za-z_-]+")


def key_name(task_name: str) -> str:
    """A Dask key prefix for a task: letters, ``-`` and ``_`` only.

    The Dask dashboard groups tasks by key prefix, and a word with digits ends
    the prefix, so digits and other characters become ``_``.
    """
    return _KEY_UNSAFE.sub("_", task_name) or "task"


class Task(Generic[P, R]):
    """A function marked with :func:`task`.

    Attributes
    ----------
    fn
        The undecorated function.
    name
        The display name.
    options
        The :class:`~daskflow.options.TaskOptions`.
    """

    def __init__(self, fn: Callable[P, R], options: TaskOptions) -> None:
        self.fn = fn
        self.options = options
        self.name = options.name
        self._key_name = key_name(options.name)
        functools.update_wrapper(self, fn)

    def with_options(self, **changes: Any) -> Task[P, R]:
        """A copy of this task with some options changed.

        Examples
        --------
        >>> patient = extract.with_options(retries=5)  # doctest: +SKIP
        """
        return Task(self.fn, with_changes(self.options, **changes))

    def on_commit(self, fn: Callable[[Any], object]) -> Callable[[Any], object]:
        """Add a commit hook ``fn(transaction)``, as a decorator (:mod:`daskflow.transactions`).

        Called on the client when a ``with transaction():`` block this
        task ran in ends without failure.

        Examples
        --------
        >>> @write_file.on_commit  # doctest: +SKIP
        ... def confirm(transaction):
        ...     print("committed")
        """
        self.options = with_changes(self.options, on_commit=(*self.options.on_commit, fn))
        return fn

    def on_rollback(self, fn: Callable[[Any], object]) -> Callable[[Any], object]:
        """Add a rollback hook ``fn(transaction)``, as a decorator (:mod:`daskflow.transactions`).

        Called on the client for each run of this task that completed in a
        ``with transaction():`` block that then failed.

        Examples
        --------
        >>> @write_file.on_rollback  # doctest: +SKIP
        ... def delete_file(transaction):
        ...     os.unlink(transaction.get("filename"))
        """
        self.options = with_changes(self.options, on_rollback=(*self.options.on_rollback, fn))
        return fn

    def __repr__(self) -> str:
        return f"<Task {self.name}>"

    def _as_called(self, runner: FlowRunner | None) -> Task[P, R]:
        """This task as called here: with the tags of ``with tags(...)`` blocks, and
        ``log_prints`` from a flow that sets it when the task leaves it unset.

        The copies are kept per combination, so a loop in a tags block
        validates options once; outside any block, in a flow without
        ``log_prints``, it is the task itself.
        """
        extra = current_tags.get()
        prints = runner is not None and runner.log_prints and self.options.log_prints is None
        if not prints and (not extra or extra <= self.options.tags):
            return self
        key = (extra, prints)
        variants: dict[Any, Task[P, R]] = self.__dict__.setdefault("_variants", {})
        variant = variants.get(key)
        if variant is None:
            changes: dict[str, Any] = {"tags": self.options.tags | extra}
            if prints:
                changes["log_prints"] = True
            variant = variants[key] = self.with_options(**changes)
        return variant

    def __reduce__(self) -> str | tuple[Any, ...]:
        # A task defined at module level pickles as a reference to that name, so
        # each Dask task carries a few bytes instead of the function and options.
        origin = _module_attribute(self.fn)
        if origin is self:
            return self.__qualname__
        options = self.options
        if options.on_commit or options.on_rollback:  # run on the client only: never shipped
            options = dataclasses.replace(options, on_commit=(), on_rollback=())
        if isinstance(origin, Task) and origin.fn is self.fn:
            return (_copy_with_options, (origin, options))
        # by value (a script's __main__, a notebook, a local function): the source read
        # here travels along, since a worker cannot read the source of code typed into a
        # notebook cell, and so do the files of its code, which cloudpickle renames
        return (_rebuild, (self.fn, options, self.__dict__.get("source"), self.code_files))

    @functools.cached_property
    def code_files(self) -> dict[str, str]:
        """Where the function's code (and the code it calls) lives, for tracebacks.

        Read where the task was defined and sent along when it goes to a
        worker by value (see :mod:`daskflow.tracebacks`).
        """
        return code_files(self.fn)

    @functools.cached_property
    def source(self) -> str | None:
        """The function's source text, or None where Python cannot find it.

        Read where the task was defined and kept when the task is sent to a
        worker by value, so cache keys built from it
        (:func:`daskflow.cache.task_input_hash`) agree between the notebook or
        script that defined the task and the workers that run it.
        """
        import inspect

        try:
            return inspect.getsource(self.fn)
        except (OSError, TypeError):
            return None

    @functools.cached_property
    def is_generator(self) -> bool:
        """Whether the function ``yield``s: a run's value is the list of what it yielded.

        The generator runs to its end where the run runs (a worker, maybe):
        Dask moves values, not streams. Calling the task returns an iterator
        over those values, as Prefect's generator tasks give a generator.
        """
        import inspect

        return inspect.isgeneratorfunction(self.fn)

    @functools.cached_property
    def has_hooks(self) -> bool:
        """Whether any state hook is set (its runs then carry their flow's name and panel)."""
        from daskflow.options import HOOKS

        return any(getattr(self.options, hook) for hook in HOOKS)

    @functools.cached_property
    def is_async(self) -> bool:
        """Whether the function is ``async def`` (its runs run a coroutine on the worker)."""
        import inspect

        return inspect.iscoroutinefunction(self.fn)

    # -- calling ---------------------------------------------------------------
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the task and return its value (in a flow, or as a bare tracked run).

        ``return_state=True`` returns the run's final ``State`` instead and
        never raises for the run's own failure; ``wait_for=[...]`` runs it
        after those futures, as with :meth:`submit`. A task that returned a
        failed State (``return Failed(...)``) gives that State back. Called
        inside a task run, it runs inline there as a nested task run.
        """
        if self.is_generator and not kwargs.get("return_state"):
            return iter(self._call(args, kwargs))
        return self._call(args, kwargs)

    def _call(self, args: Any, kwargs: Any) -> Any:
        return_state = bool(kwargs.pop("return_state", False))
        wait_for: Sequence[Any] | None = kwargs.pop("wait_for", None)
        nested = self._nested_runner()
        if nested is not None:  # inside a task run: a nested run, inline (Prefect 3)
            run = self._as_called(None)._build(nested, args, kwargs, wait_for)
            return nested.run_inline(run)
        runner = current_runner()
        if self.is_async:
            from daskflow.api import asynchronous

            if asynchronous.wants_coroutine(in_flow=runner is not None):  # ``await t(x)``
                return asynchronous.call_task(self, args, kwargs, wait_for, return_state)
        if runner is None:
            from daskflow.api import bare

            if not bare.tracked():
                return self.fn(*args, **kwargs)
            return bare.call(self._as_called(None), args, kwargs, wait_for, return_state)
        run = self._as_called(runner)._create(runner, args, kwargs, wait_for, kick=False)
        return outcome_of(runner, run, return_state)

    def submit(
        self, *args: Any, wait_for: Sequence[Any] | None = None, **kwargs: Any
    ) -> TaskFuture[R]:
        """Start a task run and return its future at once.

        Arguments may be futures, or hold them in lists, tuples, dicts and
        sets: the run waits for them and receives their values.

        Examples
        --------
        >>> future = extract.submit("2024-01-01")  # doctest: +SKIP
        >>> df = future.result()  # doctest: +SKIP
        """
        nested = self._nested_runner()
        runner = nested or current_runner()
        if runner is None:
            return self._as_called(None)._outside_flow("submit", args, kwargs, wait_for)
        run = self._as_called(None if nested else runner)._create(runner, args, kwargs, wait_for)
        if nested is not None:
            nested.flush()
        if runner.backend.eager:  # it ran in this thread: an interrupt there stops the flow
            _raise_interrupt(run)
        from daskflow.api.futures import TaskFuture

        future: TaskFuture[R] = TaskFuture(run, runner)
        run.handle = weakref.ref(future)
        return future

    def map(
        self, *args: Any, wait_for: Sequence[Any] | None = None, **kwargs: Any
    ) -> MappedFuture[R]:
        """One task run per element of the iterable arguments.

        Iterables (lists, tuples, ranges, futures of lists, other maps) are
        mapped element-wise and must have the same length; ``unmapped(x)``,
        strings, dicts and other single values go whole to every run.

        Examples
        --------
        >>> clean = transform.map(raw, unmapped(factor))  # doctest: +SKIP
        """
        from daskflow.api.mapping import map_task

        nested = self._nested_runner()
        runner = nested or current_runner()
        if runner is None:
            return self._as_called(None)._outside_flow("map", args, kwargs, wait_for)
        mapped = map_task(
            self._as_called(None if nested else runner), runner, args, kwargs, wait_for
        )
        if nested is not None:
            nested.flush()
        return mapped

    def _nested_runner(self) -> NestedRunner | None:
        """The runner of nested runs when this is called inside a task run, else None.

        Async tasks keep their own path (``await t(x)``, see
        :mod:`daskflow.api.asynchronous`).
        """
        context = current_task_run.get()
        if context is None or self.is_async:
            return None
        from daskflow.engine.nested import nested_runner

        return nested_runner(context)

    def _outside_flow(
        self, how: str, args: Sequence[Any], kwargs: dict[str, Any], wait_for: Any
    ) -> Any:
        """``submit``/``map`` outside a flow: tracked runs on the default cluster."""
        from daskflow.api import bare

        if not bare.tracked():
            raise NoFlowRunError(
                f"{self.name}.{how}()",
                f"outside a flow with daskflow.track-bare-tasks off, call {self.name}(...)",
            )
        if how == "submit":
            return bare.submit(self, args, kwargs, wait_for)
        return bare.map_bare(self, args, kwargs, wait_for)

    def map_partitions(self, ddf: Any, *args: Any, meta: Any = None, **kwargs: Any) -> Any:
        """One task run per partition of a Dask DataFrame; the results as a Dask DataFrame.

        Each partition is passed as the first argument (computed on the
        cluster, never pulled here), ``args``/``kwargs`` whole to every run.
        ``meta`` is inferred like Dask's ``map_partitions`` unless given.

        Examples
        --------
        >>> cleaned = clean.map_partitions(raw_ddf, threshold=0.5)  # doctest: +SKIP
        >>> cleaned.x.sum().compute()  # doctest: +SKIP
        """
        from daskflow.api.dataframes import map_partitions

        runner = current_runner()
        if runner is None:
            raise NoFlowRunError(
                f"{self.name}.map_partitions()", "outside a flow, use ddf.map_partitions"
            )
        return map_partitions(self, runner, ddf, args, kwargs, meta)

    def _create(
        self,
        runner: FlowRunner,
        args: Sequence[Any],
        kwargs: dict[str, Any],
        wait_for: Sequence[Any] | None,
        kick: bool = True,
    ) -> TaskRun:
        collector = Collector()
        run = self._build(runner, args, kwargs, wait_for, collector)
        if collector.dynamic:
            from daskflow.api.mapping import defer_call

            defer_call(runner, run, collector.dynamic, args, kwargs, wait_for)
            return run
        runner.add(run, kick=kick)
        return run

    def _build(
        self,
        runner: FlowRunner,
        args: Sequence[Any],
        kwargs: dict[str, Any],
        wait_for: Sequence[Any] | None,
        collector: Collector | None = None,
    ) -> TaskRun:
        """A new run of this task with its call, not yet added to ``runner``."""
        run_id = runner.new_id()
        run_name = self.run_name(args, kwargs)
        spec, upstream = build_call(
            collector or Collector(),
            self,
            runner.flow_run_id,
            run_id,
            run_name,
            None,
            args,
            kwargs,
            wait_for,
        )
        return TaskRun(run_id, f"{self._key_name}-{run_id}", self, run_name, None, spec, upstream)

    def run_name(
        self, args: Sequence[Any], kwargs: dict[str, Any], index: int | None = None
    ) -> str:
        """The display name of a run with these arguments."""
        template = self.options.task_run_name
        if template is None:
            return self.name if index is None else f"{self.name}-{index}"
        try:
            import inspect

            bound = inspect.signature(self.fn).bind_partial(*args, **kwargs).arguments
            return template.format(**bound)
        except (KeyError, IndexError, TypeError, ValueError):
            return template


def outcome_of(runner: FlowRunner, run: TaskRun, return_state: bool) -> Any:
    """What a direct call gives: the value, the final State, or the State the task returned."""
    if return_state:
        state = runner.outcome(run)
        if runner.backend.eager:  # Ctrl-C in this thread still stops the flow
            _raise_interrupt(run)
        return state
    try:
        return runner.result(run)
    except BaseException:
        returned = runner.returned_state(run)
        if returned is None:
            raise
        return returned


def _raise_interrupt(run: TaskRun) -> None:
    """Raise the ``KeyboardInterrupt`` / ``SystemExit`` that ended ``run``, if one did.

    The attempt wrapper records such a run CRASHED instead of raising; where
    it ran in the flow's own thread (``cluster="sync"``), Ctrl-C must still
    stop the flow, not only that task.
    """
    failure = run.value if run.has_value else None
    if type(failure) is TaskFailure and isinstance(
        failure.state.data, KeyboardInterrupt | SystemExit
    ):
        raise failure.state.data


def _module_attribute(fn: Any) -> Any:
    """What ``fn``'s module holds under its name, if workers can import it from there.

    None for a script's ``__main__`` and for modules whose code travels by value
    (a flow file loaded by the CLI: see :func:`daskflow.cli.run.load_flow`).
    """
    module = sys.modules.get(getattr(fn, "__module__", None) or "")
    if module is None or module.__name__ == "__main__":
        return None
    if module.__name__ in cloudpickle.list_registry_pickle_by_value():
        return None
    obj: Any = module
    for part in getattr(fn, "__qualname__", "").split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _copy_with_options(origin: Task[Any, Any], options: TaskOptions) -> Task[Any, Any]:
    return Task(origin.fn, options)


def _rebuild(
    fn: Any, options: TaskOptions, source: str | None, files: dict[str, str] | None = None
) -> Task[Any, Any]:
    rebuilt = Task(fn, options)
    if source is not None:
        rebuilt.__dict__["source"] = source
    if files:
        rebuilt.__dict__["code_files"] = files
    return rebuilt


@overload
def task(fn: Callable[P, R], /) -> Task[P, R]: ...
@overload
def task(
    *,
    name: str | None = None,
    retries: int | None = None,
    retry_delay_seconds: float | Sequence[float] | None = None,
    retry_jitter_factor: float | None = None,
    retry_on: type[BaseException] | tuple[type[BaseException], ...] | None = None,
    retry_condition_fn: Callable[[Any, Any, Any], bool] | None = None,
    timeout_seconds: float | None = None,
    tags: Iterable[str] | None = None,
    on_completion: Sequence[Callable[[Any, Any, Any], object]] | None = None,
    on_failure: Sequence[Callable[[Any, Any, Any], object]] | None = None,
    on_running: Sequence[Callable[[Any, Any, Any], object]] | None = None,
    on_crashed: Sequence[Callable[[Any, Any, Any], object]] | None = None,
    on_cancellation: Sequence[Callable[[Any, Any, Any], object]] | None = None,
    on_commit: Sequence[Callable[[Any], object]] | None = None,
    on_rollback: Sequence[Callable[[Any], object]] | None = None,
    log_prints: bool | None = None,
    task_run_name: str | None = None,
    resources: dict[str, float] | None = None,
    cache_key_fn: Callable[[Any, dict[str, Any]], str | None] | None = None,
    cache_policy: CachePolicy | None = None,
    cache_expiration: datetime.timedelta | float | None = None,
    refresh_cache: bool | None = None,
    persist_result: bool | None = None,
    result_storage: str | os.PathLike[str] | None = None,
    result_storage_key: str | None = None,
    batch: bool | int | None = None,
) -> Callable[[Callable[P, R]], Task[P, R]]: ...
def task(fn: Any = None, /, **options: Any) -> Any:
    """Mark a function as a task, bare (``@task``) or with options.

    Parameters
    ----------
    fn
        The function (when used bare).
    **options
        All keyword, all optional:

        - ``name``: the display name (default: the function's name);
        - ``retries``: extra attempts after a failure (default 0);
        - ``retry_delay_seconds``: a number, or a list (attempt ``i`` waits
          ``list[min(i, len - 1)]``; see :func:`daskflow.exponential_backoff`);
        - ``retry_jitter_factor``: a random extra delay, up to this times the delay;
        - ``retry_on``: an exception type or tuple: retry only these;
        - ``retry_condition_fn``: ``fn(task, task_run, state) -> bool``; False
          fails at once;
        - ``timeout_seconds``: an attempt running longer ends ``TIMED_OUT``
          (a failure for retries), also for blocking code;
        - ``tags``: strings, for concurrency limits and filtering runs;
        - ``on_completion``, ``on_failure``: hooks ``fn(task, task_run, state)``
          called with the final state (a failing hook is logged, never breaks
          the run); ``on_crashed`` (CRASHED, before ``on_failure``) and
          ``on_cancellation`` (CANCELLED) likewise; ``on_running`` where the
          task runs, before each attempt's body;
        - ``on_commit``, ``on_rollback``: hooks ``fn(transaction)`` called on
          the client when a ``with transaction():`` block the task ran in
          commits, or fails after the run completed
          (:mod:`daskflow.transactions`; also ``@t.on_rollback``);
        - ``log_prints``: ``print()`` inside the task becomes run log records
          (default: the flow's ``log_prints``);
        - ``task_run_name``: a format string over the arguments, e.g.
          ``"extract-{day}"``;
        - ``resources``: Dask worker resources, e.g. ``{"GPU": 1}``;
        - ``cache_key_fn``: ``fn(context, arguments) -> str | None``; runs with
          equal keys share one stored result (:func:`daskflow.cache.task_input_hash`);
        - ``cache_policy``: what the key is made of, as in Prefect 3
          (:mod:`daskflow.cache_policies`: ``INPUTS + TASK_SOURCE``, ...); not
          together with ``cache_key_fn``;
        - ``cache_expiration``: a ``timedelta`` (or seconds) past which a cached
          result is not reused;
        - ``refresh_cache``: run anyway and overwrite the cached result;
        - ``persist_result``: store the result (default: when caching, or when
          the flow persists results); with no cache option, a run that
          persists keys on ``cache_policies.DEFAULT`` (``INPUTS + TASK_SOURCE
          + RUN_ID``): the same call again in one flow run is ``CACHED``;
        - ``result_storage``: a folder or fsspec URL for this task's results;
        - ``result_storage_key``: the stored result's file name, a template
          over ``parameters``, ``flow_run`` and ``task_run``
          (``"hello-{parameters[name]}.pkl"``); a run whose key names a stored
          result reads it back (``CACHED``) unless ``cache_policy=NONE`` or
          ``refresh_cache``;
        - ``batch``: run the elements of a ``.map`` of this task in chunks, one
          Dask task per chunk, each element still its own tracked task run:
          True (chunk sizes chosen automatically), False (one Dask task per
          element) or a number of elements per chunk (default: config
          ``daskflow.batch.size``).

    Examples
    --------
    >>> @task(retries=3, retry_delay_seconds=[1, 2, 4])
    ... def extract(day: str) -> list[int]:
    ...     return [1, 2, 3]
    >>> extract.fn("2024-01-01")  # the plain function
    [1, 2, 3]
    """

    def decorate(func: Any) -> Task[Any, Any]:
        if not callable(func):
            raise NotATaskError("task", func)
        name = options.get("name") or getattr(func, "__name__", None) or type(func).__name__
        return Task(func, TaskOptions.build(**{**options, "name": name}))

    if fn is None:
        return decorate
    return decorate(fn)

"""``@flow``: a Python function whose task calls daskflow runs on Dask.

Calling a flow runs it (see :mod:`daskflow.api.flow_run`) and returns the flow
function's return value with any futures in it resolved; a flow called
inside a flow is a subflow, a flow run of its own linked to its parent.
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, Generic, ParamSpec, TypeVar, overload

from daskflow.errors import ConfigurationError, NotATaskError
from daskflow.options import FlowOptions, with_changes
from daskflow.tracebacks import user_frames

__all__ = ["UNBOUND", "Flow", "flow"]

#: The :attr:`Flow.receiver` of a flow that is not bound to an instance or class.
UNBOUND: Any = type("Unbound", (), {"__repr__": lambda self: "UNBOUND"})()

P = ParamSpec("P")
R = TypeVar("R")


class Flow(Generic[P, R]):
    """A function marked with :func:`flow`.

    Attributes
    ----------
    fn
        The undecorated function.
    name
        The display name.
    options
        The :class:`~daskflow.options.FlowOptions`.
    """

    def __init__(self, fn: Callable[P, R], options: FlowOptions, method: str | None = None) -> None:
        self.fn = fn
        self.options = options
        self.name = options.name
        #: "classmethod" or "staticmethod" when the flow wraps one (``@flow`` above it)
        self.method = method
        #: the instance (or class) a flow on a method is bound to; see :meth:`__get__`
        self.receiver: Any = UNBOUND
        functools.update_wrapper(self, fn)

    def with_options(self, **changes: Any) -> Flow[P, R]:
        """A copy of this flow with some options changed.

        Examples
        --------
        >>> debug_etl = etl.with_options(cluster="sync")  # doctest: +SKIP

        ``cluster`` and ``task_runner`` replace each other: the copy runs where
        the one given says.
        """
        if "cluster" in changes and "task_runner" not in changes:
            changes["task_runner"] = None
        elif "task_runner" in changes and "cluster" not in changes:
            changes["cluster"] = None
        changed = Flow(self.fn, with_changes(self.options, **changes), self.method)
        changed.receiver = self.receiver
        return changed

    def __get__(self, instance: Any, owner: type | None = None) -> Flow[P, R]:
        """A flow on a method, bound to its instance or class (as Prefect's flows are).

        ``@flow`` on an instance method, read from an instance, gives a copy
        bound to it; on a classmethod (``@flow`` above ``@classmethod``, as
        Prefect documents, or ``@classmethod`` above ``@flow``) a copy bound
        to the class; on a staticmethod the flow itself. The flow function
        receives the instance or class first, and the run's parameters are
        recorded (and validated) without it.
        """
        if self.method == "staticmethod":
            return self
        if self.method == "classmethod":
            receiver = owner if owner is not None else type(instance)
        elif instance is None:  # read from the class: the plain flow
            return self
        else:
            receiver = instance
        bound = copy.copy(self)
        bound.receiver = receiver
        return bound

    @functools.cached_property
    def is_async(self) -> bool:
        """Whether the function is ``async def``: calling the flow gives a coroutine."""
        import inspect

        return inspect.iscoroutinefunction(self.fn)

    @functools.cached_property
    def is_generator(self) -> bool:
        """Whether the function ``yield``s: calling the flow gives a generator of its values."""
        import inspect

        return inspect.isgeneratorfunction(self.fn)

    @user_frames
    def __call__(self, *args: Any, return_state: bool = False, **kwargs: Any) -> Any:
        """Run the flow; with ``return_state=True`` return its final ``State``.

        An ``async def`` flow gives a coroutine to await (``asyncio.run(etl())``),
        except inside a sync flow's body, where it runs at once as a subflow
        (see :mod:`daskflow.api.asynchronous`).
        """
        if self.is_async:
            from daskflow.api.asynchronous import call_flow

            return call_flow(self, args, kwargs, return_state)
        if self.is_generator:
            from daskflow.api.generators import iterate

            if return_state:
                raise ConfigurationError(
                    f"flow {self.name!r}: return_state", True, "False for a generator flow"
                )
            return iterate(self, args, kwargs)
        from daskflow.api.flow_run import run_flow

        return run_flow(self, args, kwargs, return_state)

    @user_frames
    def resume(self, run_id: str, *, return_state: bool = False) -> Any:
        """Run a failed or crashed flow run again, reusing its stored task results.

        The flow function runs again with the parameters of flow run
        ``run_id`` (read from the run store), as a new flow run linked to it
        (its ``resumed_from``): history is never rewritten. Every task run
        that completed in the old run with a stored result (``persist_result``,
        or a cache) ends ``CACHED`` with that result instead of running;
        the others run. See :mod:`daskflow.engine.resume` for how task runs
        are matched.

        Parameters
        ----------
        run_id
            The flow run's id, or a unique prefix of it (as the CLI shows).
        return_state
            Return the new run's final ``State`` instead of its value.

        Raises
        ------
        RunNotFoundError
            No recorded flow run has this id.
        ResumeError
            The run belongs to another flow, is still running, or completed.

        Examples
        --------
        >>> etl.resume("3f2a9c81")  # doctest: +SKIP
        """
        from daskflow.api.flow_run import plan_resume, run_flow

        parameters, plan = plan_resume(self, run_id)
        return run_flow(self, (), parameters, return_state, resume=plan)

    def serve(
        self,
        name: str | None = None,
        *,
        cron: str | Sequence[str] | None = None,
        interval: timedelta | float | str | Sequence[timedelta | float] | None = None,
        parameters: dict[str, Any] | None = None,
        timezone: str | None = None,
        catch_up: bool = False,
        limit: int | None = 1,
        schedules: Sequence[Any] | None = None,
        schedule: Any = None,
        rrule: str | None = None,
    ) -> None:
        """Start runs of this flow on a schedule, in this process, until Ctrl-C or SIGTERM.

        No server to run: the process records each run SCHEDULED as soon as
        its slot is known, starts it at the slot on the flow's cluster, keeps
        serving when a run fails, and on Ctrl-C/SIGTERM cancels what still
        runs (recorded CANCELLED). See :mod:`daskflow.serving.serve` for the
        policies: missed slots (skipped, or one catch-up run), overlapping
        runs (at most ``limit`` at a time), cancellation, stopping.

        The process also serves the deployment ``FLOW/NAME`` (``name``
        defaults to the flow's name), recorded in the run store: ``daskflow
        deployments run FLOW/NAME -p k=v`` and :func:`daskflow.run_deployment`
        ask it for a run from any process, which starts within about a
        second (queued under ``limit``).

        Parameters
        ----------
        name
            The deployment's name. Given, the schedule may be left out: the
            flow then runs on request only.
        cron
            A cron expression, e.g. ``"0 * * * *"`` (hourly), read in ``timezone``
            (a list: one schedule each).
        interval
            Or an interval: a ``timedelta``, seconds, or text like ``"5m"``
            (a list: one schedule each).
        parameters
            The parameters of every run (checked before serving starts).
        timezone
            An IANA timezone name for ``cron`` (default UTC); DST-aware.
        catch_up
            Start one run at once for slots missed while no serve process ran.
        limit
            At most this many runs of the flow at a time (None: no limit).
        schedules
            Instead of ``cron``/``interval``: several schedules, Prefect 3's
            objects (:mod:`daskflow.schedules`: ``Cron``, ``Interval``,
            ``RRule``); each run gets ``parameters`` with its schedule's own
            merged over them. ``schedule``: one such object; ``rrule``: a
            recurrence rule, as ``RRule(rrule, timezone=timezone)``.

        Raises
        ------
        ScheduleError
            A bad cron string, interval or timezone, before anything starts.
        ParameterValidationError
            A parameter does not fit the flow's signature.

        Examples
        --------
        >>> etl.serve(cron="0 6 * * *", timezone="Europe/Berlin",
        ...           parameters={"source": "s3://bucket/raw"})  # doctest: +SKIP
        >>> etl.serve("nightly", parameters={"source": "s3://bucket/raw"})  # doctest: +SKIP
        >>> from daskflow.schedules import Cron, Interval
        >>> etl.serve("etl", schedules=[Cron("0 6 * * *", parameters={"full": True}),
        ...                             Interval(3600)])  # doctest: +SKIP
        """
        from daskflow.serving.serve import serve

        if schedule is not None or rrule is not None or _several(cron) or _several(interval):
            from daskflow.schedules import as_schedules

            schedules = [
                *([schedule] if schedule is not None else []),
                *(schedules or []),
                *as_schedules(cron=cron, interval=interval, rrule=rrule, timezone=timezone),
            ]
            cron = interval = None

        serve(
            self,
            name,
            cron=cron,  # type: ignore[arg-type]  # a list became schedules above
            interval=interval,  # type: ignore[arg-type]
            parameters=parameters,
            timezone=timezone,
            catch_up=catch_up,
            limit=limit,
            schedules=schedules,
        )

    @functools.cached_property
    def entrypoint(self) -> str | None:
        """Where ``daskflow runs retry`` finds this flow: ``path/to/file.py:name``."""
        import inspect

        try:
            path = inspect.getsourcefile(self.fn)
        except TypeError:
            return None
        return f"{os.path.abspath(path)}:{self.fn.__name__}" if path else None

    def __repr__(self) -> str:
        return f"<Flow {self.name}>"


def _several(value: Any) -> bool:
    """Whether a ``cron``/``interval`` argument lists several (Prefect takes iterables too)."""
    return isinstance(value, list | tuple)


@overload
def flow(fn: Callable[P, R], /) -> Flow[P, R]: ...
@overload
def flow(
    *,
    name: str | None = None,
    description: str | None = None,
    version: str | None = None,
    retries: int | None = None,
    retry_delay_seconds: float | Sequence[float] | None = None,
    timeout_seconds: float | None = None,
    validate_parameters: bool | None = None,
    cluster: Any = None,
    task_runner: Any = None,
    on_completion: Sequence[Callable[[Any, Any, Any], object]] | None = None,
    on_failure: Sequence[Callable[[Any, Any, Any], object]] | None = None,
    on_cancellation: Sequence[Callable[[Any, Any, Any], object]] | None = None,
    on_running: Sequence[Callable[[Any, Any, Any], object]] | None = None,
    on_crashed: Sequence[Callable[[Any, Any, Any], object]] | None = None,
    flow_run_name: str | None = None,
    log_prints: bool | None = None,
    persist_result: bool | None = None,
    result_storage: str | os.PathLike[str] | None = None,
) -> Callable[[Callable[P, R]], Flow[P, R]]: ...
def flow(fn: Any = None, /, **options: Any) -> Any:
    """Mark a function as a flow, bare (``@flow``) or with options.

    Parameters
    ----------
    fn
        The function (when used bare).
    **options
        All keyword, all optional:

        - ``name``, ``description``, ``version``: what the runs are recorded as
          (default name: the function's name);
        - ``retries``, ``retry_delay_seconds``: attempts of the whole flow run
          after a failure, and the delay before each (a number or a list);
        - ``timeout_seconds``: the flow run ends ``TIMED_OUT`` at this deadline;
        - ``validate_parameters``: check parameters against the type hints
          with pydantic before any task runs (default True);
        - ``cluster``: where the flow's tasks run: ``"local"`` (default: the
          active ``distributed.Client``, else an embedded ``LocalCluster``),
          ``"sync"``, an address ``"tcp://host:8786"``, a ``Client`` or a Dask
          cluster object;
        - ``task_runner``: Prefect's way to say it, for migration
          (:mod:`daskflow.task_runners`: ``ThreadPoolTaskRunner(max_workers=N)``,
          ``DaskTaskRunner(...)``); not together with ``cluster``;
        - ``on_completion``, ``on_failure``, ``on_cancellation``: hooks called
          with the final state (``on_cancellation`` when the run ends
          ``CANCELLED``, as in Prefect); ``on_crashed`` when it ends CRASHED
          while its process lives (before ``on_failure``); ``on_running`` as
          each attempt starts;
        - ``flow_run_name``: a format string over the parameters;
        - ``log_prints``: ``print()`` in the flow function becomes run log
          records, and in the tasks and subflows it runs unless they set their
          own ``log_prints`` (default: a subflow's parent's, else off);
        - ``persist_result``, ``result_storage``: the defaults of the flow's
          tasks (with ``persist_result=True`` every task result is stored, so
          :meth:`Flow.resume` can reuse all of them).

    Examples
    --------
    >>> @flow(cluster="sync")
    ... def hello(name: str = "world") -> str:
    ...     return f"hello {name}"
    >>> hello()
    'hello world'
    """

    def decorate(func: Any) -> Flow[Any, Any]:
        method = None
        if isinstance(func, classmethod | staticmethod):  # ``@flow`` above it, as in Prefect
            method = type(func).__name__
            func = func.__func__
        if not callable(func):
            raise NotATaskError("flow", func)
        name = options.get("name") or getattr(func, "__name__", None) or type(func).__name__
        description = options.get("description") or getattr(func, "__doc__", None)
        return Flow(
            func,
            FlowOptions.build(**{**options, "name": name, "description": description}),
            method,
        )

    if fn is None:
        return decorate
    return decorate(fn)

"""The attempt wrapper: what every daskflow task run executes where it runs.

:func:`run_task` is the function at the heart of each Dask task daskflow
submits. In one call, on the worker, it

1. checks the upstream values: a :class:`TaskFailure` from an upstream run
   ends this run ``UPSTREAM_FAILED`` without calling the task, unless that
   upstream was passed through ``allow_failure`` (then the task receives the
   exception object);
2. fills the argument template (:meth:`CallSpec.bind`);
3. runs attempts: RUNNING, then COMPLETED, or RETRYING and another attempt
   after the delay (the worker thread is given back while it sleeps), or
   FAILED / TIMED_OUT once retries are spent or the policy says no;
4. calls the hooks once with the final state;
5. returns the task's value, or a :class:`TaskFailure` holding the final state.

A task that *returns* a :class:`~daskflow.states.State` (Prefect 3's
``return Failed(message=...)``) ends in that state, without retries: a
completed one with its ``data`` as the value, a failed or cancelled one as a
:class:`TaskFailure` marked ``returned``, which a direct call ``t(x)`` in the
flow gives back as the State instead of raising (Prefect returns what the
task returned). A state that is not final cannot end a run: it fails it.

It never raises for the user's code, so Dask sees every daskflow task succeed
and dependents always run the wrapper, which is how ``UPSTREAM_FAILED`` and
``allow_failure`` work without a round trip to the client. That holds for
``KeyboardInterrupt``, ``SystemExit`` and other ``BaseException`` raised by
the task too: the run ends ``CRASHED`` (the first two) or ``FAILED``, is not
retried, and the worker thread lives on. An exception Dask does see (a worker
that died too often, ``KilledWorker``) is infrastructure: the client records
it as ``CRASHED``.
"""

from __future__ import annotations

import functools
import inspect
import logging
import pickle
import random
import time
from collections.abc import Sequence
from typing import Any

import cloudpickle

from daskflow.engine.call import CallSpec, TaskRunInfo
from daskflow.engine.collections import describe_collection, persist_collection
from daskflow.engine.emit import emit, worker_address
from daskflow.engine.hooks import call_hooks, call_safely, hooks_for
from daskflow.engine.limits import held
from daskflow.engine.nesting import NESTED_RUNS, announce
from daskflow.engine.prints import capture_prints, plain_prints, printing_to_a_run
from daskflow.engine.returned import task_state_of
from daskflow.engine.run_logs import LOG
from daskflow.engine.task_context import TaskRunContext, current_task_run
from daskflow.engine.timeouts import attempt_deadline, call_with_timeout
from daskflow.errors import (
    CancelledRunError,
    DaskflowError,
    TaskRunTimeout,
    UpstreamFailedError,
)
from daskflow.states import State, StateType
from daskflow.tracebacks import prepare_task_traceback, rebuild, ship

__all__ = ["TaskFailure", "length_of", "run_task"]

_SIZED = (list, tuple, range, set, frozenset)


class TaskFailure:
    """The Dask result of a task run that ended failed: its final state.

    The exception travels with it, rebuilt from its class, ``args`` and
    attributes when its constructor takes other arguments
    (:func:`dump_exception`); where it cannot be rebuilt (its class cannot be
    imported there), the state's strings (type, message, traceback) name it.
    """

    __slots__ = ("returned", "root", "run_name", "state")

    def __init__(
        self,
        state: State,
        run_name: str,
        root: TaskFailure | None = None,
        returned: bool = False,
    ) -> None:
        self.state = state
        self.run_name = run_name
        #: for ``UPSTREAM_FAILED``: the failure of the run it all started with
        self.root = root
        #: the task returned this state (``return Failed(...)``) rather than raising
        self.returned = returned

    def exception(self) -> BaseException:
        exc = self.state.exception()
        assert exc is not None
        return exc

    def __reduce__(self) -> tuple[Any, ...]:
        state = self.state
        if state.data is None:
            return (TaskFailure, (state, self.run_name, self.root, self.returned))
        exc = state.data
        kind = type(exc)
        return (
            _load_failure,
            (
                state.with_data(None),
                self.run_name,
                dump_exception(exc),
                kind.__module__,
                kind.__qualname__,
                ship(exc.__traceback__),
                self.root,
                self.returned,
            ),
        )

    def __repr__(self) -> str:
        return f"TaskFailure({self.run_name!r}, {self.state!r})"


def dump_exception(exc: Any) -> bytes | None:
    """``exc`` pickled so that it unpickles as itself, or None when it cannot be.

    The normal pickle round trip first; an exception whose constructor takes
    other arguments than its ``args`` (``MyError(code, detail)`` calling
    ``super().__init__(message)``) is pickled by its class, ``args`` and
    ``__dict__`` instead, and rebuilt without calling its constructor.
    """
    try:
        data = cloudpickle.dumps(exc)
        pickle.loads(data)
        return data
    except Exception:
        pass
    if not isinstance(exc, BaseException):
        return None
    for attributes in (exc.__dict__, {}):  # the attributes may be what cannot pickle
        try:
            data = cloudpickle.dumps(_ByParts(exc, attributes))
            pickle.loads(data)
            return data
        except Exception:
            continue
    return None


class _ByParts:
    """Pickles an exception as its class, ``args`` and attributes (see :func:`dump_exception`)."""

    __slots__ = ("attributes", "exc")

    def __init__(self, exc: BaseException, attributes: dict[str, Any]) -> None:
        self.exc = exc
        self.attributes = attributes

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_exception, (type(self.exc), self.exc.args, self.attributes))


def _rebuild_exception(
    cls: type[BaseException], args: tuple[Any, ...], attributes: dict[str, Any]
) -> BaseException:
    exc = cls.__new__(cls, *args)
    BaseException.__init__(exc, *args)
    exc.__dict__.update(attributes)
    return exc


def _load_failure(
    state: State,
    run_name: str,
    data: bytes | None,
    module: str,
    qualname: str,
    shipped_traceback: list[tuple[str, str, int]] | None = None,
    root: TaskFailure | None = None,
    returned: bool = False,
) -> TaskFailure:
    """A :class:`TaskFailure` unpickled, with its exception rebuilt.

    When this process cannot rebuild it (its class cannot be imported here),
    a stand-in takes its place: a :class:`~daskflow.errors.DaskflowError`
    named like the original class, with the original text. The exception
    gets its traceback from where it was raised back, and an
    ``UpstreamFailedError`` the root failure's exception as its cause, so
    Python prints the user's frames of the task that failed first.
    """
    try:
        exc = pickle.loads(data) if data is not None else None
    except Exception:
        exc = None
    if exc is None:
        exc = _stand_in(module, qualname)(state.error_message or "")
    rebuild(exc, shipped_traceback)
    if root is not None and isinstance(exc, UpstreamFailedError):
        exc.__cause__ = root.exception()
    return TaskFailure(state.with_data(exc), run_name, root, returned)


@functools.lru_cache(maxsize=64)
def _stand_in(module: str, qualname: str) -> type[DaskflowError]:
    return type(
        qualname.rpartition(".")[2],
        (DaskflowError,),
        {
            "__module__": module,
            "__qualname__": qualname,
            "__doc__": "Stands for an exception whose class cannot be imported here.",
        },
    )


def length_of(value: Any) -> int:
    """``len`` of a task's value for a dynamic map (run on the worker holding it)."""
    size = _size_of(value)
    return size if size is not None else len(list(value))


def _size_of(value: Any) -> int | None:
    """``len(value)`` for in-memory sequences (never for lazy collections)."""
    if isinstance(value, _SIZED):
        return len(value)
    module = type(value).__module__
    if module.startswith(("numpy", "pandas")) and hasattr(value, "__len__"):
        try:
            return len(value)
        except TypeError:
            return None
    return None


#: The logger name of the records daskflow writes about a task run's attempts.
RETRY_LOGGER = "daskflow.runs.retries"


class _Attempts:
    """Emits one task run's transitions."""

    __slots__ = ("spec", "worker")

    def __init__(self, spec: CallSpec) -> None:
        self.spec = spec
        self.worker = worker_address()

    def event(
        self,
        state: State,
        attempt: int,
        size: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        spec = self.spec
        emit(
            (
                spec.flow_run_id,
                spec.task_run_id,
                state.type.value,
                state.timestamp,
                attempt,
                self.worker,
                state.message,
                state.error_type,
                state.error_message,
                state.traceback,
                size,
                details,
            ),
            final=state.type.is_final,
        )

    def record(self, level: int, message: str) -> None:
        """A log record of this task run, written by daskflow itself (a retry, say)."""
        spec = self.spec
        emit((spec.flow_run_id, spec.task_run_id, LOG, time.time(), level, RETRY_LOGGER, message))


def _info(spec: CallSpec, attempt: int, args: Sequence[Any], kwargs: dict[str, Any]) -> TaskRunInfo:
    try:
        parameters = dict(inspect.signature(spec.task.fn).bind_partial(*args, **kwargs).arguments)
    except (TypeError, ValueError):
        parameters = {}
    return TaskRunInfo.of(
        spec.task,
        spec.task_run_id,
        spec.run_name,
        spec.flow_run_id,
        spec.map_index,
        attempt,
        parameters,
        spec.flow_name,
        spec.panel_url,
    )


def _sleep(seconds: float) -> None:
    """Sleep, giving the worker's thread slot back to other tasks meanwhile."""
    if seconds <= 0:
        return
    try:
        from distributed import rejoin, secede

        secede()
    except (ValueError, KeyError, AttributeError):
        time.sleep(seconds)
        return
    try:
        time.sleep(seconds)
    finally:
        rejoin()


def _should_retry(
    spec: CallSpec,
    exc: BaseException,
    state: State,
    attempt: int,
    args: Sequence[Any],
    kwargs: dict[str, Any],
) -> bool:
    options = spec.task.options
    if attempt > options.retries:
        return False
    if options.retry_on is not None and not isinstance(exc, options.retry_on):
        return False
    if options.retry_condition_fn is not None:
        info = _info(spec, attempt, args, kwargs)
        verdict = call_safely(
            options.retry_condition_fn,
            spec.task,
            info,
            state,
            default=False,
            what="retry_condition_fn",
        )
        return bool(verdict)
    return True


def _finish(
    spec: CallSpec,
    log: _Attempts,
    state: State,
    attempt: int,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    value: Any = None,
    details: dict[str, Any] | None = None,
    root: TaskFailure | None = None,
    returned: bool = False,
) -> Any:
    """Emit the final state, call the hooks, return the Dask result."""
    failed = state.type.is_failed
    cancelled = state.type is StateType.CANCELLED
    context = current_task_run.get()
    if context is not None and context.nested is not None and context.spec is spec:
        details = {**(details or {}), NESTED_RUNS: len(context.nested.runs)}  # see nesting
    log.event(state, attempt, None if failed or cancelled else _size_of(value), details)
    hooks = hooks_for(spec.task.options, state)
    if hooks:
        call_hooks(hooks, spec.task, _info(spec, attempt, args, kwargs), state)
    return TaskFailure(state, spec.run_name, root, returned) if failed or cancelled else value


def run_task(spec: CallSpec, *upstream_values: Any) -> Any:
    """Run one task run with its retries and timeouts (see the module docstring).

    Parameters
    ----------
    spec
        The call and its identity.
    *upstream
        The values of the runs this one depends on, in slot order.

    Returns
    -------
    The task's value, or a :class:`TaskFailure`.
    """
    log = _Attempts(spec)
    if spec.parent is not None:  # started by a task run: the flow run hears of it first
        announce(spec)
    upstream: Sequence[Any] = upstream_values
    if spec.fail_with is not None:
        state = State.from_exception(StateType.FAILED, spec.fail_with)
        return _finish(spec, log, state, 0, (), {})

    for value in upstream:
        if type(value) is TaskFailure:
            upstream, blocking = _absorb_failures(spec, upstream)
            if blocking:
                root = blocking[0].root or blocking[0]
                exc = UpstreamFailedError(
                    spec.run_name, (f.run_name for f in blocking), _root_of(blocking[0])
                )
                exc.__cause__ = root.state.data  # its text shows the root's traceback
                state = State.from_exception(StateType.UPSTREAM_FAILED, exc)
                return _finish(spec, log, state, 0, (), {}, root=root)
            break

    args, kwargs = spec.bind(upstream)
    token = current_task_run.set(TaskRunContext(spec, args, kwargs))
    try:
        if spec.results is None:
            return _attempts(spec, log, args, kwargs, None)
        from daskflow.engine.caching import prepare  # only for runs that keep results

        found = prepare(spec, args, kwargs, lambda: _info(spec, 0, args, kwargs))
        if not found.hit:
            return _attempts(spec, log, args, kwargs, found.key)
        if found.silent:
            return found.value
        cached = State(StateType.CACHED, message=found.message)
        return _finish(spec, log, cached, 0, args, kwargs, found.value, found.details)
    finally:
        current_task_run.reset(token)


def _attempts(
    spec: CallSpec,
    log: _Attempts,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    cache_key: str | None,
) -> Any:
    """Attempt after attempt until success, a final failure or no retries left."""
    task = spec.task
    options = task.options
    fn = task.fn
    if getattr(task, "is_generator", False):  # its values, made where it runs, as a list
        fn = _consumed(fn)
    coroutine = task.is_async  # asked once per task (a cached property), not per attempt
    context = current_task_run.get()
    attempt = 0
    while True:
        attempt += 1
        log.event(State(StateType.RUNNING), attempt)
        if context is not None:
            context.attempt = attempt
        if options.on_running:
            running = State(StateType.RUNNING)
            call_hooks(options.on_running, task, _info(spec, attempt, args, kwargs), running)
        try:
            with held(spec.limits):
                try:
                    if options.log_prints:
                        with capture_prints(
                            flow_run_id=spec.flow_run_id, task_run_id=spec.task_run_id
                        ):
                            value = _invoke(
                                fn, args, kwargs, spec.run_name, options.timeout_seconds, coroutine
                            )
                    elif options.log_prints is False and printing_to_a_run():
                        with plain_prints():  # the task said no, in its flow's log_prints thread
                            value = _invoke(
                                fn, args, kwargs, spec.run_name, options.timeout_seconds, coroutine
                            )
                    else:
                        value = _invoke(
                            fn, args, kwargs, spec.run_name, options.timeout_seconds, coroutine
                        )
                finally:
                    if context is not None and context.nested is not None:
                        context.nested.finish()  # the runs it started end before it does
        except CancelledRunError as exc:  # the code stopped for its cancelled flow run
            cancelled = State(StateType.CANCELLED, message=str(exc))
            return _finish(spec, log, cancelled, attempt, args, kwargs)
        except Exception as exc:
            prepare_task_traceback(exc, task.__dict__.get("code_files"))
            final = StateType.TIMED_OUT if isinstance(exc, TaskRunTimeout) else StateType.FAILED
            failed = State.from_exception(final, exc)
            if not _should_retry(spec, exc, failed, attempt, args, kwargs):
                return _finish(spec, log, failed, attempt, args, kwargs)
            delay = options.retry_delay(attempt - 1)
            if options.retry_jitter_factor:
                delay += random.uniform(0, options.retry_jitter_factor * delay)
            retrying = State.from_exception(
                StateType.RETRYING,
                exc,
                message=f"attempt {attempt} failed ({type(exc).__name__}: {exc}); "
                f"retrying in {delay:.3g} s",
            )
            log.event(retrying, attempt)
            log.record(
                logging.WARNING,
                f"attempt {attempt} of {options.retries + 1} failed "
                f"({type(exc).__name__}: {exc}); retrying in {delay:.3g} s",
            )
            _sleep(delay)
            continue
        except BaseException as exc:  # never retried; the worker thread must live on
            prepare_task_traceback(exc, task.__dict__.get("code_files"))
            interrupted = isinstance(exc, (KeyboardInterrupt, SystemExit))
            final = StateType.CRASHED if interrupted else StateType.FAILED
            return _finish(spec, log, State.from_exception(final, exc), attempt, args, kwargs)
        completed = State(StateType.COMPLETED)
        if type(value) is State:  # ``return Failed(message=...)``: the run ends in it
            completed = task_state_of(value)
            if not completed.type.is_completed:
                return _finish(spec, log, completed, attempt, args, kwargs, returned=True)
            value = value.data
        value = persist_collection(value)
        details = None
        if spec.results is not None:
            from daskflow.engine.caching import store

            details = store(spec, cache_key, value)
        details = describe_collection(value, details)
        return _finish(spec, log, completed, attempt, args, kwargs, value, details)


def _consumed(fn: Any) -> Any:
    """``fn`` (a generator function) made to return the list of the values it yields."""

    @functools.wraps(fn)
    def consume(*args: Any, **kwargs: Any) -> list[Any]:
        return list(fn(*args, **kwargs))

    return consume


def _invoke(
    fn: Any,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    name: str,
    timeout: float | None,
    coroutine: bool,
) -> Any:
    if coroutine:  # an async task: its coroutine runs here, cancellable
        from daskflow.engine.aio import run_coroutine

        return run_coroutine(
            fn(*args, **kwargs), timeout, lambda: TaskRunTimeout(name, timeout or 0.0)
        )
    if timeout is None:
        return fn(*args, **kwargs)
    token = attempt_deadline.set(time.monotonic() + timeout)  # code that can stop in time reads it
    try:
        return call_with_timeout(fn, args, kwargs, timeout, lambda: TaskRunTimeout(name, timeout))
    finally:
        attempt_deadline.reset(token)


def _root_of(failure: TaskFailure) -> str:
    """The task run whose failure ``failure`` comes from, and its error, in words."""
    cause = failure.state.data
    if isinstance(cause, UpstreamFailedError) and cause.root:
        return cause.root  # it did not run either: the root travels down the chain
    state = failure.state
    error = f" ({state.error_type}: {state.error_message})" if state.error_type else ""
    return f"{failure.run_name!r}{error}"


def _absorb_failures(
    spec: CallSpec, upstream: Sequence[Any]
) -> tuple[list[Any], list[TaskFailure]]:
    """Swap allowed failures for their exceptions; return the blocking ones."""
    allowed = {slot.index for slot in spec.slots() if slot.allow_failure}
    allowed.update(spec.allowed)  # ``wait_for=[allow_failure(f)]`` fills no slot
    values: list[Any] = []
    blocking: list[TaskFailure] = []
    for i, value in enumerate(upstream):
        if type(value) is TaskFailure:
            if i in allowed:
                value = value.exception()
            else:
                blocking.append(value)
        values.append(value)
    return values, blocking

"""Running a flow: one flow run from parameters to final state.

Steps, in order:

1. bind and validate the parameters (pydantic) — a bad one raises before
   anything starts;
2. pick the backend: the parent's for a subflow without its own ``cluster``,
   else the one the ``cluster`` option resolves to;
3. for each attempt (``retries`` + 1): call the flow function with a
   :class:`~daskflow.engine.runner.FlowRunner` as the current flow run
   (on a helper thread when ``timeout_seconds`` is set), resolve futures in
   its return value, wait for every task run, and decide the state:

   - CANCELLED when the run was cancelled (:mod:`daskflow.engine.cancellation`),
     whatever the function did meanwhile;
   - FAILED when the function raised, or a task run failed that the function
     never looked at (``.result()``, ``.state``, ``.wait()``, ``allow_failure``);
   - CRASHED when ``KeyboardInterrupt`` or ``SystemExit`` stopped it;
   - TIMED_OUT at the deadline (waiting runs are cancelled);
   - what a returned State says, as in Prefect 3: a State is the final
     state; a list, tuple, set or dict holding a failed State fails
     (:func:`~daskflow.engine.returned.flow_state_of`);
   - COMPLETED otherwise, with the return value;

4. log ``Finished in state ...`` (one line per flow run), call the hooks
   with the final state (``on_failure``, ``on_cancellation`` or
   ``on_completion``) and return the value (or the state with
   ``return_state=True``), or raise what ended the run, as it was.

Every run that starts ends in a final state, recorded before anything is
raised: whatever the flow function raises (``RecursionError``,
``KeyboardInterrupt``, ``SystemExit``, any ``BaseException``), and also when
its cluster cannot be reached (the run is recorded FAILED, never started).
A flow called within :data:`STACK_RESERVE` frames of the recursion limit
raises ``RecursionError`` before its run exists, so deep subflow recursion
fails where every run above it can still record its end.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import sys
import time
import types
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from daskflow.api.flow import UNBOUND
from daskflow.api.futures import resolve_futures
from daskflow.api.logger import get_run_logger
from daskflow.api.parameters import bind_parameters
from daskflow.engine.aio import async_body
from daskflow.engine.call import FlowRunInfo
from daskflow.engine.cancellation import CancelToken, cancel_flow_run, close_token, open_token
from daskflow.engine.conclusion import conclude, release_futures
from daskflow.engine.current import current_runner
from daskflow.engine.flow_facts import FlowRunFacts, facts_of, opened
from daskflow.engine.hooks import call_hooks, hooks_for
from daskflow.engine.limits import snapshot
from daskflow.engine.prints import capture_prints, plain_prints, printing_to_a_run
from daskflow.engine.resume import ResumePlan
from daskflow.engine.returned import flow_state_of
from daskflow.engine.runner import FlowRunner, make_backend
from daskflow.engine.timeouts import call_with_timeout
from daskflow.errors import (
    CancelledRunError,
    CrashedError,
    FlowRunTimeout,
    ParameterValidationError,
    ResumeError,
)
from daskflow.observers.events import FlowRunCreated, LogEmitted, StateChanged, bus
from daskflow.observers.watch import RunWatch
from daskflow.states import State, StateType

__all__ = ["flow_parameters", "plan_resume", "run_flow", "run_name"]


def _publish(events: list[Any]) -> None:
    if bus.active:
        bus.publish(events)


def run_name(flow: Any, parameters: dict[str, Any], flow_run_id: str) -> str:
    """The display name of a flow run: ``flow_run_name`` filled in, or ``flow-1a2b3c4d``."""
    template = flow.options.flow_run_name
    if template:
        try:
            return str(template.format(**parameters))
        except (KeyError, IndexError, ValueError):
            return str(template)
    return f"{flow.name}-{flow_run_id[:8]}"


def flow_parameters(flow: Any, bound: Any) -> dict[str, Any]:
    """The run's parameters: the bound arguments, less the instance or class of a method."""
    parameters = dict(bound.arguments)
    if flow.receiver is not UNBOUND and parameters:
        del parameters[next(iter(parameters))]
    return parameters


def run_flow(
    flow: Any,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    return_state: bool,
    resume: ResumePlan | None = None,
    scheduled: str | None = None,
    scheduled_time: float | None = None,
    flow_run_id: str | None = None,
) -> Any:
    """Run ``flow`` once (with its retries) and return its value or final state.

    With ``resume``, task runs reuse the stored results of the flow run it
    was made from (see :mod:`daskflow.engine.resume`). ``scheduled`` is the
    id of a flow run ``serve`` already recorded (SCHEDULED) for this call, and
    ``scheduled_time`` its slot (``runtime.flow_run.scheduled_start_time``;
    default: now). ``flow_run_id``: the id of the new run, chosen by the
    caller (an async flow's, which it may have to cancel).
    """
    options = flow.options
    if flow.receiver is not UNBOUND:  # a flow on a method: its instance or class first
        args = (flow.receiver, *args)
    try:
        _check_stack(flow.name)
        bound = bind_parameters(flow.name, flow.fn, args, kwargs, options.validate_parameters)
    except (ParameterValidationError, RecursionError) as exc:
        if return_state:  # return_state never raises: the bad parameter (or depth) is the failure
            return State.from_exception(StateType.FAILED, exc)
        raise
    parameters = flow_parameters(flow, bound)
    parent = current_runner()
    flow_run_id = scheduled or flow_run_id or uuid.uuid4().hex
    name = run_name(flow, parameters, flow_run_id)
    if parent is None:  # the store opens while the cluster starts (_observed waits for it)
        from daskflow.store.observer import open_in_background

        open_in_background()
    with contextlib.ExitStack() as stack:
        try:
            if parent is not None and options.cluster is None and options.task_runner is None:
                backend = parent.backend
            else:  # a task runner's cluster made for this run closes when it ends
                backend = make_backend(stack.enter_context(options.cluster_for_run()))
        except Exception as exc:  # an unreachable cluster: the run is recorded, never started
            state = State.from_exception(StateType.FAILED, exc)
            _record_unstarted(flow, parameters, parent, flow_run_id, name, state, scheduled, resume)
            if return_state:
                return state
            raise
        return _run_on(
            flow,
            bound,
            backend,
            parent,
            flow_run_id,
            name,
            return_state,
            resume,
            scheduled,
            scheduled_time,
        )


def _run_on(
    flow: Any,
    bound: Any,
    backend: Any,
    parent: FlowRunner | None,
    flow_run_id: str,
    name: str,
    return_state: bool,
    resume: ResumePlan | None,
    scheduled: str | None,
    scheduled_time: float | None,
) -> Any:
    """Run the flow on ``backend``: its facts shipped, its cancel token open, observed."""
    parameters = dict(bound.arguments)
    token = open_token(flow_run_id, parent.flow_run_id if parent is not None else None)
    facts = FlowRunFacts(
        flow_run_id,
        name,
        flow.name,
        parameters,
        datetime.datetime.fromtimestamp(scheduled_time, datetime.UTC)
        if scheduled_time is not None
        else datetime.datetime.now(datetime.UTC),
        parent.flow_run_id if parent is not None else None,
        snapshot() or None,
    )
    try:
        with (
            opened(facts, backend.client),
            _observed(flow_run_id, flow.name, top_level=parent is None, run_name=name),
        ):
            return _run(
                flow,
                bound,
                backend,
                parent,
                flow_run_id,
                name,
                return_state,
                resume,
                token,
                recorded=scheduled is not None,
            )
    finally:
        close_token(flow_run_id)


#: Frames of Python stack a flow run needs in hand to start: enough to record
#: its end, and a subflow's, whatever is raised below it.
STACK_RESERVE = 150


def _check_stack(flow_name: str) -> None:
    """Raise ``RecursionError`` now if the stack is too deep to run a flow and record its end.

    Deep subflow recursion then fails at a flow call, before its run exists,
    where every run above still has the stack to record its end; hitting the
    limit inside the engine instead could leave runs RUNNING.
    """
    try:
        _descend(STACK_RESERVE)
    except RecursionError:
        raise RecursionError(
            f"flow {flow_name!r} was called too deep in the stack to run "
            f"(within {STACK_RESERVE} frames of the recursion limit, "
            f"{sys.getrecursionlimit()}): does a flow call itself without end?"
        ) from None


def _descend(frames: int) -> int:
    return frames if frames <= 0 else _descend(frames - 1)


def _record_unstarted(
    flow: Any,
    parameters: dict[str, Any],
    parent: FlowRunner | None,
    flow_run_id: str,
    name: str,
    state: State,
    scheduled: str | None,
    resume: ResumePlan | None,
) -> None:
    """Record a flow run that could not start (its cluster is unreachable) as ended."""
    from daskflow.store import default_observer

    default_observer()
    created = (
        []
        if scheduled is not None
        else [_created(flow, parameters, parent, flow_run_id, name, resume)]
    )
    _publish(
        [
            *created,
            StateChanged(flow_run_id, None, State(StateType.PENDING)),
            StateChanged(flow_run_id, None, state),
        ]
    )
    bus.flush()


def _created(
    flow: Any,
    parameters: dict[str, Any],
    parent: FlowRunner | None,
    flow_run_id: str,
    name: str,
    resume: ResumePlan | None,
) -> FlowRunCreated:
    return FlowRunCreated(
        flow_run_id,
        flow.name,
        name,
        parameters,
        parent.flow_run_id if parent else None,
        time.time(),
        flow.options.version,
        resume.flow_run_id if resume is not None else None,
        flow.entrypoint,
    )


def plan_resume(flow: Any, run_id: str) -> tuple[dict[str, Any], ResumePlan]:
    """The parameters of flow run ``run_id`` and the results its task runs stored.

    Raises
    ------
    RunNotFoundError
        No recorded flow run has this id.
    ResumeError
        It is a run of another flow, has not ended, or completed.
    """
    from daskflow.history import get_run

    bus.flush()  # a run that just ended in this process is in the store
    old = get_run(run_id)
    if old.flow_name != flow.name:
        raise ResumeError(old.id, f"it is a run of flow {old.flow_name!r}, not {flow.name!r}")
    state = old.state.type
    if not state.is_final:
        raise ResumeError(old.id, f"it has not ended (it is {state.value})")
    if state.is_completed:
        raise ResumeError(old.id, "it completed; call the flow to run it again")
    return dict(old.parameters), ResumePlan.of_records(old.id, old.read_task_runs())


def _run(
    flow: Any,
    bound: Any,
    backend: Any,
    parent: FlowRunner | None,
    flow_run_id: str,
    run_name: str,
    return_state: bool,
    resume: ResumePlan | None,
    token: CancelToken,
    recorded: bool = False,
) -> Any:
    options = flow.options
    parameters = flow_parameters(flow, bound)
    # a run serve recorded as SCHEDULED exists already
    created = (
        [] if recorded else [_created(flow, parameters, parent, flow_run_id, run_name, resume)]
    )
    _publish([*created, StateChanged(flow_run_id, None, State(StateType.PENDING))])
    attempt = 1
    parent_id = parent.flow_run_id if parent else None
    try:
        state, attempt = _attempts(flow, bound, backend, flow_run_id, resume, token)
    except BaseException as exc:  # a second Ctrl-C while ending, one during a retry's delay
        ended = _ended_by(exc)
        _publish([_finished(flow_run_id, ended), StateChanged(flow_run_id, None, ended, attempt)])
        if ended.type is StateType.CRASHED:  # the process lives on long enough for these
            info = FlowRunInfo(flow_run_id, run_name, flow.name, parameters, parent_id, attempt)
            call_hooks(options.on_crashed, flow, info, ended)
        bus.flush()
        raise
    _publish([_finished(flow_run_id, state), StateChanged(flow_run_id, None, state, attempt)])
    panel = backend.panel_url(flow_run_id)
    info = FlowRunInfo(flow_run_id, run_name, flow.name, parameters, parent_id, attempt, panel)
    call_hooks(hooks_for(options, state), flow, info, state)
    bus.flush()
    if return_state and not (
        state.type is StateType.CRASHED and isinstance(state.data, _INTERRUPTS)
    ):
        return state
    return state.result()  # raises what ended it, as it was (KeyboardInterrupt included)


def _finished(flow_run_id: str, state: State) -> LogEmitted:
    """The flow run's last log record, in Prefect's words: ``Finished in state Completed()``.

    One per flow run (task runs print none: a 10,000-task run stays readable);
    INFO when it completed, ERROR otherwise, as Prefect logs it.
    """
    level = logging.INFO if state.is_completed() else logging.ERROR
    return LogEmitted(
        flow_run_id, None, time.time(), level, FLOW_RUN_LOGGER, f"Finished in state {state}"
    )


#: The logger name of the records a flow run's function writes (``get_run_logger``).
FLOW_RUN_LOGGER = "daskflow.runs.flow_run"

#: Raised in the flow's own process, these end its run CRASHED, and still reach the
#: caller with ``return_state=True``: the process is being stopped.
_INTERRUPTS = (KeyboardInterrupt, SystemExit)


def _ended_by(exc: BaseException) -> State:
    """The final state of a flow run ended by ``exc`` (CRASHED for an interrupt)."""
    kind = StateType.CRASHED if isinstance(exc, _INTERRUPTS) else StateType.FAILED
    return State.from_exception(kind, exc)


def _attempts(
    flow: Any,
    bound: Any,
    backend: Any,
    flow_run_id: str,
    resume: ResumePlan | None,
    token: CancelToken,
) -> tuple[State, int]:
    """Attempt after attempt (``retries``): the final state, and the attempt it ended in."""
    options = flow.options
    attempt = 0
    while True:
        attempt += 1
        state, reusable = _attempt(flow, bound, backend, flow_run_id, attempt, resume, token)
        if (
            state.is_failed()
            and isinstance(state.data, Exception | None)  # an interrupt: never again
            and attempt <= options.retries
            and not token.cancelled
        ):
            delay = options.retry_delay(attempt - 1)
            _publish(
                [
                    StateChanged(
                        flow_run_id,
                        None,
                        State(
                            StateType.RETRYING,
                            message=f"attempt {attempt} ended {state.type.value}; "
                            f"retrying in {delay:g} s",
                            error_type=state.error_type,
                            error_message=state.error_message,
                            traceback=state.traceback,
                        ),
                        attempt,
                    )
                ]
            )
            if token.wait(delay):  # cancelled while waiting to retry
                return _cancelled(token), attempt
            resume = reusable  # the next attempt reuses what this one stored
            continue
        return state, attempt


@contextlib.contextmanager
def _observed(
    flow_run_id: str, flow_name: str, top_level: bool, run_name: str | None = None
) -> Iterator[None]:
    """Record the run in the store, watched; show a top-level run's logs and progress.

    Only a top-level run shows them (its subflows' records and task runs
    are its own), so no record prints twice.
    """
    from daskflow.store import default_observer

    observer = default_observer()
    watch = run_watch(observer.store) if observer is not None else None
    if observer is not None:  # chunk sizes of its maps start from earlier runs' durations
        from daskflow.engine.chunks import durations

        durations.seed(observer.store, flow_name)
    with contextlib.ExitStack() as stack:
        if top_level:
            from daskflow.progress import show_run

            stack.enter_context(show_run(flow_run_id, flow_name, run_name=run_name))
        if watch is not None:
            watch.register(flow_run_id)
            stack.callback(watch.unregister, flow_run_id)
        yield


_watches: dict[str, RunWatch] = {}


def run_watch(store: Any) -> RunWatch:
    """One watch (heartbeats, cancellation requests) per store for the life of the process."""
    from daskflow import config

    watch = _watches.get(store.url)
    if watch is None:
        watch = _watches[store.url] = RunWatch(
            store, cancel_flow_run, poll_interval=config.get_seconds("cancel-poll-interval")
        )
    return watch


def _attempt(
    flow: Any,
    bound: Any,
    backend: Any,
    flow_run_id: str,
    attempt: int,
    resume: ResumePlan | None,
    token: CancelToken,
) -> tuple[State, ResumePlan | None]:
    """One attempt: its final state, and the results a retry may reuse (if it failed)."""
    options = flow.options
    runner = FlowRunner(flow_run_id, backend)
    runner.flow_name = flow.name
    runner.panel_url = backend.panel_url(flow_run_id)
    runner.persist_result = options.persist_result
    parent = current_runner()  # a subflow's log_prints defaults to its parent's (Prefect)
    prints = options.log_prints
    runner.log_prints = prints if prints is not None else bool(parent and parent.log_prints)
    runner.result_storage = options.result_storage
    runner.resume = resume
    runner.token = token
    if options.timeout_seconds is not None:
        runner.timeout = options.timeout_seconds
        runner.deadline = time.time() + options.timeout_seconds
    with runner:
        _publish([StateChanged(flow_run_id, None, State(StateType.RUNNING), attempt)])
        if options.on_running:
            facts = facts_of(flow_run_id)
            assert facts is not None  # opened by run_flow
            info = FlowRunInfo(
                flow_run_id,
                facts.name,
                flow.name,
                flow_parameters(flow, bound),
                facts.parent_flow_run_id,
                attempt,
                runner.panel_url,
            )
            call_hooks(options.on_running, flow, info, State(StateType.RUNNING))
        get_run_logger().info(
            "flow run %s started (attempt %d) on %s",
            flow_run_id,
            attempt,
            backend.describe(flow_run_id),
        )
        undo = token.on_cancel(runner.cancel_all)
        try:
            state = _outcome(flow, bound, runner)
        finally:
            undo()
            release_futures(runner)
        if token.cancelled:
            return _cancelled(token), None
        reusable = ResumePlan.of_attempt(flow_run_id, runner.runs) if state.is_failed() else None
        return state, reusable


def _outcome(flow: Any, bound: Any, runner: FlowRunner) -> State:
    """Call the flow function, wait for its task runs, and say how the attempt ended."""
    timeout = flow.options.timeout_seconds
    try:
        if timeout is None:
            value = _call(flow, bound, runner.flow_run_id, runner.log_prints)
        else:
            value = call_with_timeout(
                _call,
                (flow, bound, runner.flow_run_id, runner.log_prints),
                {},
                timeout,
                lambda: FlowRunTimeout(flow.name, timeout),
                stop=runner.token,
            )
        if not runner.settle():
            raise FlowRunTimeout(flow.name, timeout or 0.0)
        failed = conclude(runner)
        unhandled = [s for r, s in failed if not r.handled]
        if unhandled and type(value) is not State:  # a State returned decides (Prefect)
            # the flow fails with the root failure's error (the user's code), not with
            # the UPSTREAM_FAILED of a run downstream of it, when the root is unhandled too
            roots = [s for s in unhandled if s.type is not StateType.UPSTREAM_FAILED]
            first = (roots or unhandled)[0]
            crashed = first.type is StateType.CRASHED  # the infrastructure, not the code
            return State(
                StateType.CRASHED if crashed else StateType.FAILED,
                message=f"{len(unhandled)} task run(s) failed; first: {first.message}",
                error_type=first.error_type,
                error_message=first.error_message,
                traceback=first.traceback,
                data=_as_exception(first.exception(), runner.flow_run_id),
            )
        return flow_state_of(value)
    except FlowRunTimeout as exc:  # at the deadline, or code in the flow waiting when it passed
        runner.cancel_all()
        conclude(runner)
        return State.from_exception(StateType.TIMED_OUT, exc)
    except BaseException as exc:  # also KeyboardInterrupt, SystemExit: the run still ends
        runner.cancel_all()
        conclude(runner)
        return _ended_by(exc)


def _as_exception(exc: BaseException | None, flow_run_id: str) -> BaseException | None:
    """A task run's error as its flow run's: an interrupt raised on a worker is not this process's.

    ``SystemExit`` or ``KeyboardInterrupt`` in a task the flow never waited on
    ends the flow run CRASHED with a :class:`~daskflow.errors.CrashedError`
    caused by it, so the flow's caller is not interrupted by another thread's exit.
    """
    if exc is None or isinstance(exc, Exception):
        return exc
    error = CrashedError(f"flow run {flow_run_id}", f"a task run raised {type(exc).__name__}")
    error.__cause__ = exc
    return error


def _cancelled(token: CancelToken) -> State:
    reason = token.reason or "cancellation was requested"
    error = CancelledRunError(f"flow run {token.flow_run_id}", reason)
    return State(StateType.CANCELLED, message=str(error), data=error)


def _call(flow: Any, bound: Any, flow_run_id: str, log_prints: bool) -> Any:
    if log_prints:
        with capture_prints(flow_run_id=flow_run_id):
            value = _body(flow, bound)
    elif printing_to_a_run():  # a subflow with log_prints=False in its parent's thread
        with plain_prints():
            value = _body(flow, bound)
    else:
        value = _body(flow, bound)
    return resolve_futures(value)


def _body(flow: Any, bound: Any) -> Any:
    """Call the flow function; an async one's body runs on the loop that awaited the flow.

    A generator the function gives back is driven here: value by value for
    the caller of a generator flow, else into a list (:mod:`daskflow.api.generators`).
    """
    if flow.is_async:
        from daskflow.engine.aio import run_body

        return run_body(flow.fn(*bound.args, **bound.kwargs))
    if async_body.get():  # a sync subflow of an async flow: its async tasks give values
        token = async_body.set(False)
        try:
            value = flow.fn(*bound.args, **bound.kwargs)
        finally:
            async_body.reset(token)
    else:
        value = flow.fn(*bound.args, **bound.kwargs)
    if isinstance(value, types.GeneratorType):
        from daskflow.api.generators import drive

        return drive(flow, value)
    return value

"""States returned by user code: what they make of the run that returned them.

Prefect 3 lets a task or a flow *return* a :class:`~daskflow.states.State`
(``return Failed(message="no rows today")``) to say how its run ends, and
reads a flow's return value for States. The rules, in one place:

- a task's returned State (:func:`task_state_of`, called by the attempt
  wrapper where the task ran): a completed one completes the run with its
  ``data`` as the value, a failed or cancelled one ends the run so (its
  ``data``, when an exception, is the error; otherwise a
  :class:`~daskflow.errors.FailedRunError` with the message), one that is
  not final fails the run saying so. It is not retried.
- a flow's return value (:func:`flow_state_of`): a State is the final
  state; a list, tuple, set or dict holding States fails when any of them
  failed (``"1/2 states failed."``), is cancelled when any was cancelled;
  anything else completes with the value.

Pure functions of states: no I/O, usable with no cluster.
"""

from __future__ import annotations

from typing import Any

from daskflow.errors import CancelledRunError, FailedRunError
from daskflow.states import State, StateType

__all__ = ["flow_state_of", "task_state_of"]


def task_state_of(state: State) -> State:
    """The final state of a run whose task returned ``state`` (its data set apart).

    A completed state keeps its type and message (its data becomes the
    value); a failed or cancelled one keeps its message and, when its data
    is an exception, that exception as the error; a state that is not final
    fails the run, saying so.
    """
    kind = state.type
    if kind.is_completed:
        return State(kind, message=state.message)
    if not kind.is_final:
        return State(
            StateType.FAILED,
            message=f"the task returned {state}, which is not final: a run must end "
            "Completed, Failed, Cancelled or Crashed",
        )
    if kind is StateType.UPSTREAM_FAILED:  # only daskflow itself ends a run so
        kind = StateType.FAILED
    exc = state.data if isinstance(state.data, BaseException) else None
    if exc is None:  # what ``state.result()`` raises, and what the run's record names
        if kind is StateType.CANCELLED:
            exc = CancelledRunError("task run", state.message or "cancelled")
        else:
            exc = FailedRunError(state.message or f"the task returned {state}")
    return State.from_exception(kind, exc, message=state.message)


def flow_state_of(value: Any) -> State:
    """The final state of a flow run whose function returned ``value`` (Prefect 3's rules).

    A State is used as given, even over task runs that failed unlooked-at
    (the function decided; a completed one's data is the flow's value);
    a list, tuple, set or the values of a dict holding States fail the run
    when any of them failed (cancelled when any was cancelled), with the
    first failed one's error; anything else completes with ``value``.
    """
    if type(value) is State:
        kind = value.type
        if kind.is_failed or kind is StateType.CANCELLED:
            return _ended_as(value, value.message)
        if kind.is_completed:
            return State(StateType.COMPLETED, message=value.message, data=value.data)
        return State(StateType.COMPLETED, data=value)
    kind_of = type(value)
    if kind_of in (list, tuple, set, frozenset) or kind_of is dict:
        items = value.values() if kind_of is dict else value
        states = [v for v in items if type(v) is State]
        if states:
            failed = [v for v in states if v.type.is_failed]
            cancelled = [v for v in states if v.type is StateType.CANCELLED]
            if failed:
                return _ended_as(failed[0], f"{len(failed)}/{len(states)} states failed.")
            if cancelled:
                return _ended_as(cancelled[0], f"{len(cancelled)}/{len(states)} states cancelled.")
    return State(StateType.COMPLETED, data=value)


def _ended_as(state: State, message: str) -> State:
    """A failed (or cancelled) flow state from a state its function returned."""
    exc = state.exception()
    kind = StateType.CANCELLED if state.type is StateType.CANCELLED else StateType.FAILED
    if kind is StateType.FAILED and state.type is StateType.CRASHED:
        kind = StateType.CRASHED
    return State(
        kind,
        message=message or str(exc),
        error_type=type(exc).__name__ if exc is not None else None,
        error_message=str(exc) if exc is not None else None,
        traceback=state.traceback,
        data=exc,
    )

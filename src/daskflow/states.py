"""States of flow runs and task runs: a pure state machine.

A run moves through :class:`StateType` values; each step is a frozen
:class:`State` that says what, when and (for failures) why. Nothing here does
I/O or knows about Dask: the engine produces states, observers record them.

The allowed moves::

    SCHEDULED ─▶ PENDING ─▶ RUNNING ─▶ COMPLETED | CACHED
                   │           │  ▲──▶ FAILED | TIMED_OUT | CRASHED | CANCELLED
                   │           ▼  │
                   │        RETRYING   (an attempt failed and another follows,
                   │                    or a worker died and Dask rescheduled it)
                   └─▶ UPSTREAM_FAILED | CANCELLED | CRASHED | CACHED | FAILED

A final state is never left. :func:`transition` is the one function that
checks a move.

As in Prefect 3, :func:`Completed`, :func:`Failed`, :func:`Cancelled`,
:func:`Crashed`, :func:`Pending`, :func:`Running`, :func:`Scheduled` and
:func:`Cached` make states by hand: a task or flow that *returns* one ends in
it (the engine reads it; see :mod:`daskflow.engine.attempt`), and
``Finished in state Completed()`` is how a final state reads (``str(state)``).
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field, replace
from typing import Any

from daskflow.errors import (
    CancelledRunError,
    CrashedError,
    DaskflowError,
    FailedRunError,
    InvalidTransitionError,
)
from daskflow.tracebacks import format_exception

__all__ = [
    "Cached",
    "Cancelled",
    "Completed",
    "Crashed",
    "Failed",
    "InvalidTransitionError",
    "Pending",
    "Running",
    "Scheduled",
    "State",
    "StateType",
    "is_state",
    "transition",
]


class StateType(enum.Enum):
    """What a run is doing, or how it ended."""

    SCHEDULED = "SCHEDULED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    RETRYING = "RETRYING"
    COMPLETED = "COMPLETED"
    CACHED = "CACHED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    UPSTREAM_FAILED = "UPSTREAM_FAILED"
    CRASHED = "CRASHED"
    CANCELLED = "CANCELLED"

    # by value: a str hashes in C, an Enum member in Python (these run per transition)
    @property
    def is_final(self) -> bool:
        return self._value_ in _FINAL_VALUES

    @property
    def is_completed(self) -> bool:
        return self._value_ in _COMPLETED_VALUES

    @property
    def is_failed(self) -> bool:
        return self._value_ in _FAILED_VALUES


_FAILED = frozenset(
    {StateType.FAILED, StateType.TIMED_OUT, StateType.UPSTREAM_FAILED, StateType.CRASHED}
)
_FINAL = _FAILED | {StateType.COMPLETED, StateType.CACHED, StateType.CANCELLED}
_FAILED_VALUES = frozenset(s.value for s in _FAILED)
_FINAL_VALUES = frozenset(s.value for s in _FINAL)
_COMPLETED_VALUES = frozenset({StateType.COMPLETED.value, StateType.CACHED.value})

_ALLOWED: dict[StateType | None, frozenset[StateType]] = {
    None: frozenset({StateType.SCHEDULED, StateType.PENDING}),
    StateType.SCHEDULED: frozenset({StateType.PENDING, StateType.RUNNING, StateType.CANCELLED}),
    StateType.PENDING: frozenset(
        {
            StateType.RUNNING,
            StateType.UPSTREAM_FAILED,
            StateType.CANCELLED,
            StateType.CRASHED,
            StateType.CACHED,
            StateType.FAILED,
        }
    ),
    StateType.RUNNING: _FINAL - {StateType.UPSTREAM_FAILED} | {StateType.RETRYING},
    StateType.RETRYING: frozenset(
        {StateType.RUNNING, StateType.CANCELLED, StateType.CRASHED, StateType.FAILED}
    ),
}


@dataclass(frozen=True, slots=True)
class State:
    """One state of a run.

    Parameters
    ----------
    type
        The :class:`StateType`.
    timestamp
        Seconds since the epoch when the run entered this state.
    message
        A short human sentence, e.g. ``"attempt 2 of 3 failed"``.
    error_type, error_message, traceback
        For failures: the exception's class name, its text and the formatted
        traceback, kept as strings so a state can always be recorded.
    data
        The run's value for completed states and the exception object for
        failures, when known. Not part of equality.
    """

    type: StateType
    timestamp: float = field(default_factory=time.time)
    message: str = ""
    error_type: str | None = None
    error_message: str | None = None
    traceback: str | None = None
    data: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def from_exception(
        cls, type: StateType, exc: BaseException, message: str = "", timestamp: float | None = None
    ) -> State:
        """A failure state describing ``exc`` (with its traceback text)."""
        return cls(
            type=type,
            timestamp=time.time() if timestamp is None else timestamp,
            message=message or f"{exc.__class__.__name__}: {exc}",
            error_type=exc.__class__.__name__,
            error_message=str(exc),
            traceback=format_exception(exc),
            data=exc,
        )

    def is_final(self) -> bool:
        """True once the run can no longer change."""
        return self.type.is_final

    def is_completed(self) -> bool:
        """True for ``COMPLETED`` and ``CACHED``."""
        return self.type.is_completed

    def is_failed(self) -> bool:
        """True for ``FAILED``, ``TIMED_OUT``, ``UPSTREAM_FAILED`` and ``CRASHED``."""
        return self.type.is_failed

    def is_crashed(self) -> bool:
        """True for ``CRASHED``."""
        return self.type is StateType.CRASHED

    def is_cancelled(self) -> bool:
        """True for ``CANCELLED``."""
        return self.type is StateType.CANCELLED

    def is_running(self) -> bool:
        """True for ``RUNNING`` and ``RETRYING`` (Prefect's Retrying is a RUNNING state)."""
        return self.type is StateType.RUNNING or self.type is StateType.RETRYING

    def is_pending(self) -> bool:
        """True for ``PENDING``."""
        return self.type is StateType.PENDING

    def is_scheduled(self) -> bool:
        """True for ``SCHEDULED``."""
        return self.type is StateType.SCHEDULED

    @property
    def name(self) -> str:
        """The state's name as Prefect writes it: ``Completed``, ``TimedOut``, ..."""
        return _NAMES[self.type]

    def with_data(self, data: Any) -> State:
        """A copy carrying ``data`` (a value or an exception)."""
        return replace(self, data=data)

    def exception(self) -> BaseException | None:
        """The exception of a failed or cancelled state, rebuilt if it was not kept."""
        if not (self.type.is_failed or self.type is StateType.CANCELLED):
            return None
        if isinstance(self.data, BaseException):
            return self.data
        if self.type is StateType.CRASHED:
            return CrashedError("run", self.message or "the infrastructure failed")
        if self.type is StateType.CANCELLED:
            return CancelledRunError("run", self.message or "cancelled")
        if self.error_type is None:  # made by hand (``Failed(message=...)``), no exception
            return FailedRunError(self.message or f"the run ended {self.type.value}")
        return DaskflowError(
            f"{self.error_type or self.type.value}: {self.error_message or self.message}"
        )

    def result(self, raise_on_failure: bool = True) -> Any:
        """The run's value; for a failed state raise its exception.

        Parameters
        ----------
        raise_on_failure
            When False, a failed state returns its exception instead of raising.
        """
        exc = self.exception()
        if exc is not None:
            if raise_on_failure:
                raise exc
            return exc
        data = self.data
        resolve = getattr(data, "_daskflow_resolve_", None)
        return resolve() if resolve is not None else data

    def __repr__(self) -> str:
        extra = f", message={self.message!r}" if self.message else ""
        return f"State({self.type.value}{extra})"

    def __str__(self) -> str:
        """The state as Prefect logs it: ``Completed()``, ``Failed('boom')``."""
        return f"{self.name}({self.message!r})" if self.message else f"{self.name}()"


_NAMES = {t: "".join(part.title() for part in t.value.split("_")) for t in StateType}


def is_state(obj: Any) -> bool:
    """Whether ``obj`` is a :class:`State` (what a task or flow returned, say)."""
    return type(obj) is State


def _made(type: StateType, message: str | None, data: Any) -> State:
    return State(type, message=message or "", data=data)


def Completed(message: str | None = None, data: Any = None) -> State:
    """A ``COMPLETED`` state; returned from a task or flow, ``data`` is its value.

    Examples
    --------
    >>> Completed(message="all good", data=42).result()
    42
    """
    return _made(StateType.COMPLETED, message, data)


def Failed(message: str | None = None, data: Any = None) -> State:
    """A ``FAILED`` state; returned from a task or flow, that run fails with ``message``.

    ``data`` may be an exception: it is what ``state.result()`` raises
    (otherwise a :class:`~daskflow.errors.FailedRunError` with the message).

    Examples
    --------
    >>> Failed(message="no rows today").is_failed()
    True
    """
    return _made(StateType.FAILED, message, data)


def Cancelled(message: str | None = None, data: Any = None) -> State:
    """A ``CANCELLED`` state; returned from a task or flow, that run ends cancelled."""
    return _made(StateType.CANCELLED, message, data)


def Crashed(message: str | None = None, data: Any = None) -> State:
    """A ``CRASHED`` state: the infrastructure failed, not the code."""
    return _made(StateType.CRASHED, message, data)


def Cached(message: str | None = None, data: Any = None) -> State:
    """A ``CACHED`` state: a completed state whose value came from a cache."""
    return _made(StateType.CACHED, message, data)


def Pending(message: str | None = None, data: Any = None) -> State:
    """A ``PENDING`` state (not final: a run cannot end in it)."""
    return _made(StateType.PENDING, message, data)


def Running(message: str | None = None, data: Any = None) -> State:
    """A ``RUNNING`` state (not final: a run cannot end in it)."""
    return _made(StateType.RUNNING, message, data)


def Scheduled(message: str | None = None, data: Any = None) -> State:
    """A ``SCHEDULED`` state (not final: a run cannot end in it)."""
    return _made(StateType.SCHEDULED, message, data)


def transition(current: StateType | None, new: StateType) -> StateType:
    """Check one move of the state machine and return the new type.

    Parameters
    ----------
    current
        The run's current state type, or None for a run not yet created.
    new
        The state type the run moves to.

    Raises
    ------
    InvalidTransitionError
        When the move is not allowed (a final state is never left).

    Examples
    --------
    >>> transition(StateType.RUNNING, StateType.COMPLETED)
    <StateType.COMPLETED: 'COMPLETED'>
    """
    allowed = _ALLOWED.get(current, frozenset())
    if new not in allowed:
        raise InvalidTransitionError(current, new)
    return new

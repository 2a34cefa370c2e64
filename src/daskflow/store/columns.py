"""Rows to columns and back: what the SQL store writes for an event, and reads as a row.

Pure functions, no SQLAlchemy: each ``*_tuple`` function gives the column
values of one table row as a plain tuple, in the order of its ``*_COLUMNS``
(what the driver takes as it is: :mod:`daskflow.store.driver`); each
``*_row`` function turns a result row (anything with attributes named as the
columns) into a public row of :mod:`daskflow.store.base`.
JSON columns (parameters, tags, details) are encoded and decoded here.
Values for the ``String(255)`` columns are cut to fit (:func:`fit`), and text
that no database can hold (lone surrogates, NUL) is escaped (:func:`clean`),
so no name, message or traceback ever fails a batch.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from daskflow.observers.events import FlowRunCreated, LogEmitted, StateChanged, TaskRunCreated
from daskflow.states import StateType

from .base import FlowRunRow, LogRow, TaskRunRow, TransitionRow
from .fold import STATUS_COLUMNS, RunStatus, jsonable

__all__ = [
    "FLOW_COLUMNS",
    "LOG_COLUMNS",
    "NAME_LENGTH",
    "TASK_COLUMNS",
    "TRANSITION_COLUMNS",
    "clean",
    "decode_result",
    "fit",
    "flow_row",
    "flow_tuple",
    "log_row",
    "log_tuple",
    "status_tuple",
    "task_row",
    "task_tuple",
    "transition_row",
    "transition_tuple",
]


#: Length of the ``String(255)`` columns of :mod:`daskflow.store.schema` (names,
#: worker, error type). A longer value would fail the whole batch on a database
#: that checks lengths (PostgreSQL), so values are cut to fit here.
NAME_LENGTH = 255

#: The columns :func:`flow_tuple` gives values of, in order.
FLOW_COLUMNS: tuple[str, ...] = (
    "id",
    "flow_name",
    "name",
    "parameters",
    "parent_flow_run_id",
    "version",
    "created",
    "heartbeat",
    "resumed_from",
    "entrypoint",
    "scheduled_time",
    "cancel_requested",
    *STATUS_COLUMNS,
)
#: The columns :func:`task_tuple` gives values of, in order.
TASK_COLUMNS: tuple[str, ...] = (
    "id",
    "flow_run_id",
    "task_name",
    "name",
    "map_index",
    "tags",
    "created",
    *STATUS_COLUMNS,
    "parent_task_run_id",
    "transitions_implied",
)
#: The columns :func:`transition_tuple` gives values of, in order.
TRANSITION_COLUMNS: tuple[str, ...] = (
    "flow_run_id",
    "task_run_id",
    "state",
    "timestamp",
    "attempt",
    "worker",
    "message",
    "error_type",
    "error_message",
    "traceback",
    "details",
)
#: The columns :func:`log_tuple` gives values of, in order.
LOG_COLUMNS: tuple[str, ...] = (
    "flow_run_id",
    "task_run_id",
    "timestamp",
    "level",
    "logger",
    "message",
)


def clean(text: str | None) -> str | None:
    r"""``text`` as every database stores it: lone surrogates and NUL escaped.

    SQLite refuses a string UTF-8 cannot encode (a lone surrogate from a
    badly decoded file name), PostgreSQL one holding NUL. ASCII text without
    NUL, nearly all of it, is returned as it is after one quick check.

    Examples
    --------
    >>> clean("a\x00b")
    'a\\x00b'
    """
    if text is None:
        return None
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text.replace("\x00", "\\x00") if "\x00" in text else text


def fit(value: str | None, length: int = NAME_LENGTH) -> str | None:
    """``value`` cleaned (:func:`clean`) and cut to ``length`` characters."""
    value = clean(value)
    if value is None or len(value) <= length:
        return value
    return value[:length]


def status_tuple(status: RunStatus) -> tuple[Any, ...]:
    """The status columns of a run, in the order of ``STATUS_COLUMNS``."""
    s = status
    return (
        s.state._value_,  # not .value: an Enum property, slow on this path
        s.state_time,
        clean(s.state_message) if s.state_message else s.state_message,
        s.start_time,
        s.end_time,
        s.attempts,
        fit(s.worker) if s.worker else s.worker,
        fit(s.error_type) if s.error_type else s.error_type,
        clean(s.error_message) if s.error_message else s.error_message,
        clean(s.traceback) if s.traceback else s.traceback,
        s.result,
    )


def flow_tuple(event: FlowRunCreated, status: RunStatus) -> tuple[Any, ...]:
    """A ``flow_runs`` row for a flow run created with ``status``, in ``FLOW_COLUMNS`` order."""
    return (
        event.flow_run_id,
        fit(event.flow_name),
        fit(event.run_name),
        json.dumps(jsonable(event.parameters)),
        event.parent_flow_run_id,
        fit(event.version),
        event.timestamp,
        None,  # heartbeat
        event.resumed_from,
        event.entrypoint,
        event.scheduled_time,
        None,  # cancel_requested
        *status_tuple(status),
    )


def task_tuple(event: TaskRunCreated, status: RunStatus, implied: bool = False) -> tuple[Any, ...]:
    """A ``task_runs`` row for a task run created with ``status``, in ``TASK_COLUMNS`` order.

    ``implied``: the row holds the run's transitions (:mod:`daskflow.store.implied`).
    """
    return (
        event.task_run_id,
        event.flow_run_id,
        fit(event.task_name),
        fit(event.run_name),
        event.map_index,
        _tags(event.tags),
        event.timestamp,
        *status_tuple(status),
        event.parent_task_run_id,
        1 if implied else None,
    )


def transition_tuple(change: StateChanged) -> tuple[Any, ...]:
    """A ``transitions`` row for one state change, in ``TRANSITION_COLUMNS`` order.

    Most values are None or empty: they skip :func:`clean` and :func:`fit`
    (a batch of a big flow holds thousands of transitions).
    """
    state = change.state
    worker, message, error_type = change.worker, state.message, state.error_type
    return (
        change.flow_run_id,
        change.task_run_id,
        state.type._value_,  # not .value: an Enum property, slow on this path
        state.timestamp,
        change.attempt,
        fit(worker) if worker else worker,
        clean(message) if message else message,
        fit(error_type) if error_type else error_type,
        clean(state.error_message) if state.error_message else state.error_message,
        clean(state.traceback) if state.traceback else state.traceback,
        json.dumps(jsonable(change.details)) if change.details else "{}",
    )


def log_tuple(event: LogEmitted) -> tuple[Any, ...]:
    """A ``logs`` row for one log record, in ``LOG_COLUMNS`` order."""
    return (
        event.flow_run_id,
        event.task_run_id,
        event.timestamp,
        event.level,
        fit(event.logger),
        clean(event.message),
    )


@functools.lru_cache(maxsize=256)
def _tags(tags: frozenset[str]) -> str:
    return json.dumps(sorted(tags))  # a map's task runs share one set: encode it once


def flow_row(r: Any) -> FlowRunRow:
    """The public row of a ``flow_runs`` result row."""
    return FlowRunRow(
        id=r.id,
        flow_name=r.flow_name,
        name=r.name,
        parameters=json.loads(r.parameters),
        parent_flow_run_id=r.parent_flow_run_id,
        state=StateType(r.state),
        state_message=r.state_message,
        created=r.created,
        start_time=r.start_time,
        end_time=r.end_time,
        heartbeat=r.heartbeat,
        version=r.version,
        error_type=r.error_type,
        error_message=r.error_message,
        traceback=r.traceback,
        result=decode_result(r.result),
        resumed_from=r.resumed_from,
        entrypoint=r.entrypoint,
        scheduled_time=r.scheduled_time,
        cancel_requested=r.cancel_requested,
    )


def task_row(r: Any) -> TaskRunRow:
    """The public row of a ``task_runs`` result row."""
    return TaskRunRow(
        id=r.id,
        flow_run_id=r.flow_run_id,
        task_name=r.task_name,
        name=r.name,
        map_index=r.map_index,
        state=StateType(r.state),
        created=r.created,
        start_time=r.start_time,
        end_time=r.end_time,
        attempts=r.attempts,
        worker=r.worker,
        tags=tuple(json.loads(r.tags)),
        error_type=r.error_type,
        error_message=r.error_message,
        traceback=r.traceback,
        result=decode_result(r.result),
        parent_task_run_id=r.parent_task_run_id,
    )


def decode_result(text: str | None) -> dict[str, Any] | None:
    """The ``result`` column (JSON) as a dict; None when the run stored no result."""
    return json.loads(text) if text else None


def transition_row(r: Any) -> TransitionRow:
    """The public row of a ``transitions`` result row."""
    return TransitionRow(
        flow_run_id=r.flow_run_id,
        task_run_id=r.task_run_id,
        state=StateType(r.state),
        timestamp=r.timestamp,
        attempt=r.attempt,
        worker=r.worker,
        message=r.message,
        error_type=r.error_type,
        error_message=r.error_message,
        traceback=r.traceback,
        details=json.loads(r.details),
    )


def log_row(r: Any) -> LogRow:
    """The public row of a ``logs`` result row joined with its task run's name."""
    return LogRow(
        flow_run_id=r.flow_run_id,
        task_run_id=r.task_run_id,
        timestamp=r.timestamp,
        level=r.level,
        logger=r.logger,
        message=r.message,
        task_name=r.task_name,
    )

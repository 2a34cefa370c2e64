"""The public records of run history, built from the store's rows.

Rows (:mod:`daskflow.store.base`) are the store's own shape; these records are
what users handle: ``datetime`` times (UTC-aware), :class:`~daskflow.states.State`
objects, durations. A :class:`FlowRun` is built from its row at once and reads
its task runs, logs, transitions and artifacts from its store on first access
only, so listing a thousand flow runs never touches their task runs.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from daskflow.errors import CancelError, RunNotFoundError
from daskflow.history.display import (
    artifact_html,
    artifact_summary,
    flow_run_card,
    format_duration,
    safe_url,
)
from daskflow.states import State, StateType
from daskflow.store.base import is_bare

if TYPE_CHECKING:  # the store package may pull in SQLAlchemy: import it when used
    import pandas as pd

    from daskflow.store.base import (
        ArtifactRow,
        FlowRunRow,
        LogRow,
        RunStore,
        TaskRunRow,
        TransitionRow,
    )

__all__ = ["Artifact", "FlowRun", "LogRecord", "TaskRun", "Transition"]

#: At most this many artifacts in a flow run's notebook card (the newest).
CARD_ARTIFACTS = 10


def _when(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _duration(start: datetime | None, end: datetime | None) -> timedelta | None:
    return end - start if start is not None and end is not None else None


@dataclass(frozen=True, slots=True)
class TaskRun:
    """One recorded task run.

    ``state`` carries the type and, for failures, the error type, message and
    traceback; ``attempts`` counts the attempts that started, ``worker`` is
    where the last one ran (None under ``cluster="sync"``).
    """

    id: str
    flow_run_id: str | None  # None: a bare task run (called outside any flow)
    name: str
    task_name: str
    map_index: int | None
    state: State
    attempts: int
    worker: str | None
    start_time: datetime | None
    end_time: datetime | None
    tags: tuple[str, ...]
    error_type: str | None
    error_message: str | None
    traceback: str | None
    result: dict[str, Any] | None = None
    #: the task run that called, submitted or mapped this one; None: the flow (or no one)
    parent_task_run_id: str | None = None

    @property
    def duration(self) -> timedelta | None:
        """``end_time - start_time``, or None until the run ended."""
        return _duration(self.start_time, self.end_time)

    @property
    def result_location(self) -> str | None:
        """Where the run's result is stored (a path or URL), or None: not stored."""
        return (self.result or {}).get("location")

    @property
    def result_size(self) -> int | None:
        """Bytes of the stored result, or None."""
        return (self.result or {}).get("size")

    @property
    def cache_key(self) -> str | None:
        """The cache key the result was stored or found under, or None."""
        return (self.result or {}).get("cache_key")

    @property
    def collection(self) -> dict[str, Any] | None:
        """For a task that returned a Dask collection: type, partitions, dtypes."""
        return (self.result or {}).get("collection")

    @classmethod
    def _from_row(cls, row: TaskRunRow) -> TaskRun:
        end = row.end_time if row.end_time is not None else row.start_time
        message = f"{row.error_type}: {row.error_message}" if row.error_type else ""
        state = State(
            row.state,
            timestamp=end if end is not None else row.created,
            message=message,
            error_type=row.error_type,
            error_message=row.error_message,
            traceback=row.traceback,
        )
        return cls(
            row.id,
            None if is_bare(row.flow_run_id) else row.flow_run_id,
            row.name,
            row.task_name,
            row.map_index,
            state,
            row.attempts,
            row.worker,
            _when(row.start_time),
            _when(row.end_time),
            tuple(row.tags),
            row.error_type,
            row.error_message,
            row.traceback,
            row.result,
            row.parent_task_run_id,
        )


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One log record of a flow run or of one of its task runs."""

    flow_run_id: str
    task_run_id: str | None
    task_name: str | None
    timestamp: datetime
    level: int
    logger: str
    message: str

    @property
    def level_name(self) -> str:
        """``"INFO"``, ``"WARNING"`` …"""
        return logging.getLevelName(self.level)

    @classmethod
    def _from_row(cls, row: LogRow) -> LogRecord:
        return cls(
            row.flow_run_id,
            row.task_run_id,
            row.task_name,
            datetime.fromtimestamp(row.timestamp, UTC),
            row.level,
            row.logger,
            row.message,
        )


@dataclass(frozen=True, slots=True)
class Transition:
    """One state change: the state entered, by which attempt, on which worker."""

    state: State
    task_run_id: str | None
    attempt: int
    worker: str | None

    @property
    def timestamp(self) -> datetime:
        """When the state was entered (UTC)."""
        return datetime.fromtimestamp(self.state.timestamp, UTC)

    @classmethod
    def _from_row(cls, row: TransitionRow) -> Transition:
        state = State(
            row.state,
            timestamp=row.timestamp,
            message=row.message,
            error_type=row.error_type,
            error_message=row.error_message,
            traceback=row.traceback,
        )
        return cls(state, row.task_run_id, row.attempt, row.worker)


@dataclass(frozen=True, slots=True)
class Artifact:
    """One recorded artifact (see :mod:`daskflow.artifacts`).

    ``type`` is ``"markdown"``, ``"table"``, ``"link"`` or ``"progress"``;
    ``data`` its content: the markdown text, the table (a list of dicts, a
    dict of lists or a list of lists), ``{"link": ..., "link_text": ...}``, or
    the percentage. ``created`` is when it was created, ``updated`` when its
    content last changed (a progress artifact's updates). The run ids are
    None for an artifact created outside any run, ``task_run_id`` and
    ``task_name`` for one created by the flow function itself.
    """

    id: str
    key: str | None
    type: str
    data: Any
    description: str | None
    created: datetime
    updated: datetime
    flow_run_id: str | None
    task_run_id: str | None
    task_name: str | None = None

    def __repr__(self) -> str:
        run = f" of run {self.flow_run_id[:8]}" if self.flow_run_id else ""
        return (
            f"<Artifact {self.key or '(no key)'} {self.type}{run}: "
            f"{artifact_summary(self)!r}, id {self.id[:8]}>"
        )

    def _repr_html_(self) -> str:
        """The artifact as the notebook card shows it (tables as tables)."""
        return artifact_html(self)

    @classmethod
    def _from_row(cls, row: ArtifactRow) -> Artifact:
        try:
            data = json.loads(row.data)
        except ValueError:  # not written by daskflow.artifacts: show it as it is
            data = row.data
        return cls(
            row.id,
            row.key,
            row.type,
            data,
            row.description,
            datetime.fromtimestamp(row.created, UTC),
            datetime.fromtimestamp(row.updated, UTC),
            None if is_bare(row.flow_run_id) else row.flow_run_id,  # a bare task run's: none
            row.task_run_id,
            row.task_name,
        )


class FlowRun:
    """One recorded flow run (see the module docstring for what is read when).

    Attributes
    ----------
    id, name, flow_name
        The run's id (32 hex digits), its run name and its flow's name.
    state
        Its :class:`~daskflow.states.State` when read (type, message, error).
    parameters
        The parameters it was called with (as JSON where possible).
    created, start_time, end_time
        UTC-aware datetimes; ``start_time``/``end_time`` are None until the
        run started/ended.
    parent_id
        The parent flow run's id for a subflow, else None.
    version
        The flow's ``version`` option.
    resumed_from
        For a run made by ``Flow.resume``: the id of the run it resumed.
    entrypoint
        ``path/to/file.py:name`` of the flow function (what ``runs retry`` loads).
    scheduled_time
        For a run started by ``serve``: the schedule slot it serves, else None.
    cancel_requested
        When its cancellation was asked for (:meth:`cancel`), else None.
    """

    def __init__(self, row: FlowRunRow, store: RunStore) -> None:
        self._row = row
        self._store = store
        self.id = row.id
        self.name = row.name
        self.flow_name = row.flow_name
        self.parameters = row.parameters
        self.parent_id = row.parent_flow_run_id
        self.version = row.version
        self.resumed_from = row.resumed_from
        self.entrypoint = row.entrypoint
        self.scheduled_time = _when(row.scheduled_time)
        self.cancel_requested = _when(row.cancel_requested)
        self.created = datetime.fromtimestamp(row.created, UTC)
        self.start_time = _when(row.start_time)
        self.end_time = _when(row.end_time)
        entered = row.end_time or row.start_time or row.created
        self.state = State(
            row.state,
            timestamp=entered,
            message=row.state_message,
            error_type=row.error_type,
            error_message=row.error_message,
            traceback=row.traceback,
        )

    @property
    def duration(self) -> timedelta | None:
        """``end_time - start_time``, or None until the run ended."""
        return _duration(self.start_time, self.end_time)

    @cached_property
    def _task_rows(self) -> list[TaskRunRow]:
        return self._store.list_task_runs(self.id)

    @cached_property
    def task_runs(self) -> list[TaskRun]:
        """Every task run of this flow run, in creation order (read once)."""
        return [TaskRun._from_row(row) for row in self._task_rows]

    @cached_property
    def logs(self) -> list[LogRecord]:
        """Log records of the flow run and its task runs, oldest first (read once)."""
        return [LogRecord._from_row(row) for row in self._store.list_logs(self.id)]

    @cached_property
    def artifacts(self) -> list[Artifact]:
        """Artifacts of the flow run and its task runs, oldest first (read once).

        Examples
        --------
        >>> [(a.key, a.type) for a in get_run("1a2b3c4d").artifacts]  # doctest: +SKIP
        [('load-progress', 'progress'), ('sales-by-region', 'table')]
        """
        rows = self._store.list_artifacts(flow_run_id=self.id)
        return [Artifact._from_row(row) for row in reversed(rows)]

    @cached_property
    def transitions(self) -> list[Transition]:
        """The flow run's own state changes, oldest first (read once)."""
        rows = self._store.list_transitions(self.id)
        return [Transition._from_row(row) for row in rows]

    def read_task_runs(self, *, task: str | None = None, limit: int | None = None) -> list[TaskRun]:
        """A fresh, bounded read of task runs (for runs too big for :attr:`task_runs`).

        Parameters
        ----------
        task
            Only runs of this task name.
        limit
            At most this many, in creation order; None for all.

        Examples
        --------
        >>> get_run("1a2b3c4d").read_task_runs(task="extract", limit=5)  # doctest: +SKIP
        """
        rows = self._store.list_task_runs(self.id, task=task, limit=limit)
        return [TaskRun._from_row(row) for row in rows]

    def read_logs(
        self, *, task: str | None = None, limit: int | None = None, newest: bool = False
    ) -> list[LogRecord]:
        """A fresh, bounded read of log records, oldest first.

        Parameters
        ----------
        task
            Only records of this task name's runs.
        limit
            At most this many; None for all.
        newest
            With ``limit``: the last records instead of the first (the tail).

        Examples
        --------
        >>> get_run("1a2b3c4d").read_logs(task="extract")  # doctest: +SKIP
        >>> get_run("1a2b3c4d").read_logs(limit=20, newest=True)  # doctest: +SKIP
        """
        rows = self._store.list_logs(self.id, task=task, limit=limit, newest=newest)
        return [LogRecord._from_row(row) for row in rows]

    def task_counts(self) -> dict[str, dict[StateType, int]]:
        """``{task_name: {state: count}}``: one grouped query, fast at any size.

        Examples
        --------
        >>> get_run("1a2b3c4d").task_counts()  # doctest: +SKIP
        {'extract': {<StateType.COMPLETED: 'COMPLETED'>: 10}}
        """
        return self._store.count_task_runs(self.id)

    def cancel(self, *, wait: float | None = 10.0) -> FlowRun:
        """Cancel this flow run, wherever it runs; return it as it is afterwards.

        The request is written to the run store, where the flow's process
        (this one, or another, e.g. a ``serve`` process) picks it up within
        about a second (``daskflow.cancel-poll-interval``): the run's task runs
        waiting or running on the cluster are cancelled and recorded
        ``CANCELLED``, its ``on_cancellation`` hooks are called and the flow
        run ends ``CANCELLED`` (see :mod:`daskflow.engine.cancellation`). A
        SCHEDULED run that ``serve`` has not started yet is never started.

        Parameters
        ----------
        wait
            Seconds to wait for the run to end (None: do not wait). A run
            whose process is gone does not end: after ``wait`` the record
            returned is still RUNNING (the store marks it CRASHED once its
            heartbeat is stale).

        Raises
        ------
        CancelError
            The run has already ended.

        Examples
        --------
        >>> daskflow.get_run("1a2b3c4d").cancel().state.type  # doctest: +SKIP
        <StateType.CANCELLED: 'CANCELLED'>
        """
        import time

        from daskflow.engine.cancellation import cancel_flow_run
        from daskflow.observers.events import bus

        bus.flush()  # a run of this process is in the store
        row = self._store.request_cancel(self.id, time.time())
        if row is None:
            raise RunNotFoundError(self.id, safe_url(self._store))
        if row.state.is_final:
            raise CancelError(self.id, f"it has already ended ({row.state.value})")
        cancel_flow_run(self.id)  # at once when it runs in this process
        deadline = None if wait is None else time.monotonic() + wait
        current = FlowRun(row, self._store)
        while deadline is not None and time.monotonic() < deadline:
            current = self.refresh()
            if current.state.is_final():
                break
            time.sleep(0.1)
        return current

    def refresh(self) -> FlowRun:
        """This flow run read again from its store (for a run still going)."""
        row = self._store.get_flow_run(self.id)
        if row is None:  # the store was emptied under us
            raise RunNotFoundError(self.id, safe_url(self._store))
        return FlowRun(row, self._store)

    def to_pandas(self) -> pd.DataFrame:
        """One row per task run, in creation order.

        Columns: ``id``, ``name``, ``task_name``, ``map_index`` (Int64),
        ``state`` (categorical over every state type), ``attempts``,
        ``worker``, ``start_time``/``end_time`` (UTC datetimes), ``duration``
        (timedelta), ``error_type``, ``error_message``, ``tags`` (tuples),
        ``result_location`` and ``result_size`` (Int64) of stored results.
        Built column by column from the store's rows, without making a
        :class:`TaskRun` per row. Tracebacks stay in :attr:`task_runs`.

        Examples
        --------
        >>> df = get_run("1a2b3c4d").to_pandas()  # doctest: +SKIP
        >>> df.groupby("task_name")["duration"].mean()  # doctest: +SKIP
        """
        import numpy as np
        import pandas as pd

        fields = (
            "id", "name", "task_name", "map_index", "state", "attempts", "worker",
            "start_time", "end_time", "error_type", "error_message", "tags",
        )  # fmt: skip
        rows = self._task_rows
        column = {name: list(map(attrgetter(name), rows)) for name in fields}
        code = {state: i for i, state in enumerate(StateType)}
        states = np.fromiter(map(code.__getitem__, column["state"]), np.int8, len(rows))
        start = pd.to_datetime(np.asarray(column["start_time"], dtype=float), unit="s", utc=True)
        end = pd.to_datetime(np.asarray(column["end_time"], dtype=float), unit="s", utc=True)
        frame = pd.DataFrame(
            {
                "id": column["id"],
                "name": column["name"],
                "task_name": column["task_name"],
                "map_index": pd.array(column["map_index"], dtype="Int64"),
                "state": pd.Categorical.from_codes(states, [t.value for t in StateType]),
                "attempts": np.asarray(column["attempts"], dtype="int64"),
                "worker": pd.Series(column["worker"], dtype=object),
                "start_time": start,
                "end_time": end,
                "duration": end - start,
                "error_type": pd.Series(column["error_type"], dtype=object),
                "error_message": pd.Series(column["error_message"], dtype=object),
                "tags": pd.Series(column["tags"], dtype=object),
                "result_location": pd.Series(
                    [(r.result or {}).get("location") for r in rows], dtype=object
                ),
                "result_size": pd.array(
                    [(r.result or {}).get("size") for r in rows], dtype="Int64"
                ),
            }
        )
        frame.attrs["flow_run_id"] = self.id
        return frame

    def __repr__(self) -> str:
        took = f" in {format_duration(self.duration)}" if self.duration is not None else ""
        state = self.state.type.value
        return f"<FlowRun {self.name!r} of {self.flow_name}: {state}{took}, id {self.id[:8]}>"

    def _repr_html_(self) -> str:
        """A compact card: state, times, parameters, task counts (never the task rows), artifacts.

        The card shows the newest :data:`CARD_ARTIFACTS` artifacts, read with a limit.
        """
        rows = self._store.list_artifacts(flow_run_id=self.id, limit=CARD_ARTIFACTS + 1)
        shown = [Artifact._from_row(row) for row in reversed(rows[:CARD_ARTIFACTS])]
        return flow_run_card(self, self.task_counts(), shown, truncated=len(rows) > CARD_ARTIFACTS)

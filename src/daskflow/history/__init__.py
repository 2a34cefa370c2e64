"""Run history: what the run store recorded, as read-only records.

The store keeps *rows* (:mod:`daskflow.store.base`), shaped for writing and
querying. This package wraps them in the records users handle, with
``datetime`` times, :class:`~daskflow.states.State` objects and lazy access to
the (possibly millions of) task runs behind a flow run::

    runs(flow=..., state=..., limit=100)  -> list[FlowRun]    newest first
    get_run("1a2b3c4d")                   -> FlowRun          id or unique prefix
    task_runs(task=..., state=..., limit=50) -> list[TaskRun] newest first, bare included
    read_artifacts(key=..., latest=...)   -> list[Artifact]   newest first
    FlowRun                                                   (records.py)
    ├── .state .parameters .start_time .end_time .duration   from its row, at once
    ├── .task_runs    -> list[TaskRun]      read on first access, then kept
    ├── .logs         -> list[LogRecord]    read on first access, then kept
    ├── .transitions  -> list[Transition]   the flow run's own state changes
    ├── .artifacts    -> list[Artifact]     its and its task runs' artifacts
    ├── .task_counts() -> {task: {state: n}} one grouped query, never the rows
    ├── .to_pandas()  -> one row per task run, built column-wise in one go
    └── ._repr_html_() the notebook card    (display.py: colours, durations, HTML)

A :class:`FlowRun` is a snapshot of the store when it was read; for a run
still going, :meth:`FlowRun.refresh` reads it again. Every read goes through
the configured store (:func:`daskflow.store.open_store`: config
``daskflow.store``, env ``DASKFLOW_STORE``) unless a store or URL is given.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from daskflow.errors import ConfigurationError, RunNotFoundError
from daskflow.history.display import STATE_COLORS, format_duration, safe_url
from daskflow.history.records import Artifact, FlowRun, LogRecord, TaskRun, Transition
from daskflow.states import StateType

if TYPE_CHECKING:
    from daskflow.store.base import RunStore

__all__ = [
    "STATE_COLORS",
    "Artifact",
    "FlowRun",
    "LogRecord",
    "TaskRun",
    "Transition",
    "format_duration",
    "get_run",
    "read_artifacts",
    "runs",
    "task_runs",
]


def _state_type(state: StateType | str) -> StateType:
    if isinstance(state, StateType):
        return state
    try:
        return StateType[str(state).strip().upper().replace("-", "_")]
    except KeyError:
        names = ", ".join(t.value for t in StateType)
        raise ConfigurationError("state", state, f"one of {names}") from None


_readers: dict[str, RunStore] = {}
_readers_lock = threading.Lock()


def _open(store: RunStore | str | None) -> RunStore:
    """The store to read: the one given, else one reader per URL for the process.

    ``open_store`` makes a new store (an SQLAlchemy engine) per call; reusing
    one per URL keeps ``daskflow.runs()`` in a loop from piling up engines, and
    the records it returns read from it later.
    """
    if store is not None and not isinstance(store, str):
        return store
    from daskflow.store import open_store
    from daskflow.store.observer import configured_url

    url = configured_url() if store is None else store.strip()
    with _readers_lock:
        reader = _readers.get(url)
        if reader is None:
            reader = _readers[url] = open_store(url)
        return reader


def runs(
    flow: str | Any | None = None,
    state: StateType | str | None = None,
    limit: int | None = 100,
    *,
    store: RunStore | str | None = None,
) -> list[FlowRun]:
    """Recorded flow runs, newest first.

    Parameters
    ----------
    flow
        Only runs of this flow: its name, or the ``Flow`` object.
    state
        Only runs in this state: a :class:`~daskflow.states.StateType` or its
        name in any case (``"failed"``).
    limit
        At most this many runs; None for all.
    store
        A run store or a store URL; default: the configured store.

    Raises
    ------
    ConfigurationError
        ``state`` names no state type.

    Examples
    --------
    >>> import daskflow
    >>> failed = daskflow.runs(flow="etl", state="failed", limit=10)  # doctest: +SKIP
    >>> [run.state.message for run in failed]  # doctest: +SKIP
    """
    name = flow if flow is None or isinstance(flow, str) else getattr(flow, "name", str(flow))
    kind = None if state is None else _state_type(state)
    opened = _open(store)
    rows = opened.list_flow_runs(flow=name, state=kind, limit=limit)
    return [FlowRun(row, opened) for row in rows]


def task_runs(
    task: str | Any | None = None,
    state: StateType | str | None = None,
    limit: int | None = 50,
    *,
    store: RunStore | str | None = None,
) -> list[TaskRun]:
    """Recorded task runs of any flow run, newest first; bare ones have ``flow_run_id=None``.

    A task called outside any flow runs as a task run of no flow run
    (:mod:`daskflow.api.bare`): this is where those are listed.

    Parameters
    ----------
    task
        Only runs of this task: its name, or the ``Task`` object.
    state
        Only runs in this state: a :class:`~daskflow.states.StateType` or its
        name in any case.
    limit
        At most this many runs; None for all.
    store
        A run store or a store URL; default: the configured store.

    Examples
    --------
    >>> import daskflow
    >>> [r.state.type for r in daskflow.task_runs(task="extract", limit=3)]  # doctest: +SKIP
    """
    from daskflow.observers.events import bus

    bus.flush()  # bare task runs of this process are recorded in the background
    name = task if task is None or isinstance(task, str) else getattr(task, "name", str(task))
    kinds = None if state is None else [_state_type(state)]
    rows = _open(store).recent_task_runs(task=name, states=kinds, limit=limit)
    return [TaskRun._from_row(row) for row in rows]


def get_run(run_id: str, *, store: RunStore | str | None = None) -> FlowRun:
    """One recorded flow run, by its id or a unique prefix of it.

    Parameters
    ----------
    run_id
        The full id, or a prefix of 6 characters or more that only one run's
        id starts with (the CLI shows the first 8).
    store
        A run store or a store URL; default: the configured store.

    Raises
    ------
    RunNotFoundError
        No run has this id, or the prefix is shorter than 6 characters or
        matches several runs (then the error is "ambiguous" and lists some).

    Examples
    --------
    >>> import daskflow
    >>> run = daskflow.get_run("1a2b3c4d")  # doctest: +SKIP
    >>> run.state.type, run.duration, len(run.task_runs)  # doctest: +SKIP
    """
    opened = _open(store)
    row = opened.get_flow_run(run_id) if run_id else None
    if row is None:
        matches = opened.match_flow_runs(run_id) if len(run_id) >= 6 else []
        raise RunNotFoundError(run_id, safe_url(opened), matches)
    return FlowRun(row, opened)


def read_artifacts(
    key: str | None = None,
    *,
    latest: bool = False,
    limit: int | None = 100,
    store: RunStore | str | None = None,
) -> list[Artifact]:
    """Recorded artifacts, newest first (also :func:`daskflow.artifacts.read_artifacts`).

    Parameters
    ----------
    key
        Only the history of this key.
    latest
        Only the newest artifact of each key (artifacts without a key are
        left out): what ``daskflow artifacts list`` shows.
    limit
        At most this many; None for all.
    store
        A run store or a store URL; default: the configured store.

    Examples
    --------
    >>> from daskflow.history import read_artifacts
    >>> [a.key for a in read_artifacts(latest=True)]  # doctest: +SKIP
    ['load-progress', 'sales-by-region']
    """
    opened = _open(store)
    rows = opened.list_artifacts(key=key, latest=latest, limit=limit)
    return [Artifact._from_row(row) for row in rows]

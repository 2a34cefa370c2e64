"""The run store's contract: what it records and how it is read.

A store receives the engine's events in batches (:meth:`RunStore.write`) and
answers queries with plain rows. Rows are the store's own view; the public
records users get from ``daskflow.runs()`` wrap them (``daskflow.history``).

Two implementations share this protocol: the SQL store
(:mod:`daskflow.store.sql`: SQLite by default, any SQLAlchemy URL) and the
in-memory one used by tests and ``daskflow.store: memory``.

How the events map to rows:

- ``FlowRunCreated`` inserts a flow run (state PENDING; ``scheduled_time``
  the slot of a run that ``serve`` started); ``TaskRunCreated`` inserts a
  task run (state PENDING).
- ``StateChanged`` appends a transition and updates its run: the state,
  ``start_time`` at the first RUNNING, ``end_time`` at a final state,
  ``attempts`` (the number of RUNNING transitions), the worker of the last
  attempt, and error type/message/traceback from failure states.
- ``LogEmitted`` appends a log record.
- ``ArtifactCreated`` inserts an artifact; ``ArtifactUpdated`` changes its
  data (and description) in place (:func:`~daskflow.store.fold.merge_artifacts`:
  by timestamp, so an update that arrives before its artifact is not lost).
- ``TaskEdgesAdded`` adds dependencies between task names (and, in a small
  run, task runs) of a flow run (:mod:`daskflow.store.graph`);
  ``ResourcesSampled`` a sample of worker CPU and memory
  (:mod:`daskflow.store.resources`).

``cancel_requested`` comes from no event: :meth:`RunStore.request_cancel`
(``daskflow runs cancel``) sets it, and the flow's process, polling
:meth:`RunStore.cancel_requests`, cancels the run and records its state.

A batch is one transaction; the engine never sends an event twice. A batch
replayed from the journal (:mod:`daskflow.store.journal`) comes with its id,
which the store records with it: the same id again is skipped, so a journal
replayed twice is written once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from daskflow.observers.events import Event
from daskflow.states import StateType

if TYPE_CHECKING:
    from .resources import ResourceBin

__all__ = [
    "HEARTBEAT_TIMEOUT",
    "ArtifactRow",
    "FlowRunRow",
    "LogRow",
    "RunStore",
    "TaskRunBin",
    "TaskRunRow",
    "TransitionRow",
    "error_reason",
]

#: The default of ``daskflow.heartbeat-timeout``: a RUNNING (or SCHEDULED) flow run
#: whose heartbeat is older than this many seconds is CRASHED (its process died).
HEARTBEAT_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class FlowRunRow:
    """One flow run as stored."""

    id: str
    flow_name: str
    name: str
    parameters: dict[str, Any]
    parent_flow_run_id: str | None
    state: StateType
    state_message: str
    created: float
    start_time: float | None
    end_time: float | None
    heartbeat: float | None = None
    version: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    traceback: str | None = None
    result: dict[str, Any] | None = None
    resumed_from: str | None = None
    entrypoint: str | None = None
    scheduled_time: float | None = None  # the schedule slot of a run started by serve
    cancel_requested: float | None = None  # when cancellation was asked for


#: How the ``flow_run_id`` of a bare task run (a task called outside any flow,
#: :mod:`daskflow.api.bare`) starts: the id of the runner that ran it, which no
#: flow-run row has. Records read back show ``flow_run_id=None`` for it.
BARE_PREFIX = "bare-"


def is_bare(flow_run_id: str | None) -> bool:
    """Whether a recorded ``flow_run_id`` means "no flow run" (a bare task run)."""
    return flow_run_id is not None and flow_run_id.startswith(BARE_PREFIX)


@dataclass(frozen=True, slots=True)
class TaskRunRow:
    """One task run as stored."""

    id: str
    flow_run_id: str
    task_name: str
    name: str
    map_index: int | None
    state: StateType
    created: float
    start_time: float | None
    end_time: float | None
    attempts: int = 0
    worker: str | None = None
    tags: tuple[str, ...] = ()
    error_type: str | None = None
    error_message: str | None = None
    traceback: str | None = None
    result: dict[str, Any] | None = None
    parent_task_run_id: str | None = None  # the task run that started this one, if any


@dataclass(frozen=True, slots=True)
class TaskRunBin:
    """How many task runs of one task name, in one state, started in one time bin.

    What :meth:`RunStore.bin_task_runs` returns: the timeline of a flow run
    of 100,000 task runs drawn as counts per task name and time bin instead
    of one bar per run. ``bin`` is None for the runs that have not started.
    """

    task_name: str
    state: StateType
    bin: int | None
    count: int


@dataclass(frozen=True, slots=True)
class TransitionRow:
    """One state change of a flow run (``task_run_id`` None) or a task run."""

    flow_run_id: str
    task_run_id: str | None
    state: StateType
    timestamp: float
    attempt: int = 0
    worker: str | None = None
    message: str = ""
    error_type: str | None = None
    error_message: str | None = None
    traceback: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LogRow:
    """One log record of a flow run or of one of its task runs."""

    flow_run_id: str
    task_run_id: str | None
    timestamp: float
    level: int
    logger: str
    message: str
    task_name: str | None = None


@dataclass(frozen=True, slots=True)
class ArtifactRow:
    """One artifact as stored (``data``: its content as JSON text).

    ``created`` is when it was created, ``updated`` when its content last
    changed (a progress artifact's updates). ``flow_run_id`` and
    ``task_run_id`` are None for an artifact created outside any run;
    ``task_name`` is read with it (None for a flow run's own artifact).
    """

    id: str
    key: str | None
    type: str
    data: str
    description: str | None
    created: float
    updated: float
    flow_run_id: str | None
    task_run_id: str | None
    task_name: str | None = None


def error_reason(exc: BaseException) -> str:
    """The first line of the database's own message, without SQLAlchemy's additions.

    Never the SQL statement nor the rows' values, which SQLAlchemy appends
    (they may hold parameters and log lines): what a warning may show.
    """
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def merge_bins(
    groups: Iterable[tuple[str, StateType, int | None, int]], bins: int
) -> list[TaskRunBin]:
    """:class:`TaskRunBin` rows from ``(task name, state, raw bin, count)`` groups.

    Both stores group by a raw bin index (about ``(start_time - start) /
    width``, out of range for runs before ``start`` or after the last bin);
    this clamps it to ``[0, bins - 1]``, adds up the groups that land in one
    bin, and sorts, so both stores answer alike.
    """
    merged: dict[tuple[str, StateType, int | None], int] = {}
    for task, state, raw, count in groups:
        key = (task, state, None if raw is None else min(max(int(raw), 0), bins - 1))
        merged[key] = merged.get(key, 0) + count
    rows = [TaskRunBin(task, state, index, n) for (task, state, index), n in merged.items()]
    rows.sort(key=lambda r: (r.task_name, -1 if r.bin is None else r.bin, r.state.value))
    return rows


@runtime_checkable
class RunStore(Protocol):
    """What every run store does. All methods are thread-safe."""

    url: str

    def write(self, events: Sequence[Event], *, replay_id: str | None = None) -> None:
        """Record a batch of events in one transaction; a ``replay_id`` seen before: nothing."""

    def heartbeat(self, flow_run_ids: Sequence[str], now: float) -> None:
        """Mark these RUNNING flow runs alive at ``now``."""

    def request_cancel(self, flow_run_id: str, now: float) -> FlowRunRow | None:
        """Ask for a flow run (id or unique prefix) to be cancelled; return its row after.

        Sets ``cancel_requested`` to ``now`` when the run has not ended and no
        request was made yet (the first time is kept). The state itself is
        the business of the run's process, which reads requests with
        :meth:`cancel_requests`. None when no such run is recorded.
        """

    def cancel_requests(self, flow_run_ids: Sequence[str]) -> list[str]:
        """Those of these (full) flow run ids whose cancellation was requested.

        A flow's process asks about once a second for all its running flow
        runs: primary-key lookups only.
        """

    def last_scheduled_time(self, flow_name: str) -> float | None:
        """The latest ``scheduled_time`` of a started run of this flow (None: never served).

        What ``serve`` counts missed slots from.
        """

    def list_flow_runs(
        self,
        *,
        flow: str | None = None,
        state: StateType | None = None,
        limit: int | None = 100,
    ) -> list[FlowRunRow]:
        """Flow runs, newest first, optionally of one flow name and/or state."""

    def get_flow_run(self, flow_run_id: str) -> FlowRunRow | None:
        """One flow run by id, or by a unique id prefix (as the CLI shows them)."""

    def match_flow_runs(self, prefix: str, limit: int = 5) -> list[str]:
        """Ids of up to ``limit`` flow runs whose id starts with ``prefix`` (sorted)."""

    def list_task_runs(
        self,
        flow_run_id: str,
        *,
        task: str | Sequence[str] | None = None,
        limit: int | None = None,
        states: Sequence[StateType] | None = None,
    ) -> list[TaskRunRow]:
        """Task runs of a flow run in creation order, optionally of task names or states.

        ``task`` is one task name or several. Naming the task names lets a
        SQL store find the runs of a few states among a million through its
        index of task runs by task name and state.
        """

    def recent_task_runs(
        self,
        *,
        task: str | None = None,
        states: Sequence[StateType] | None = None,
        limit: int | None = 50,
    ) -> list[TaskRunRow]:
        """Task runs of any flow run (or none: bare task runs), newest first."""

    def bin_task_runs(
        self, flow_run_id: str, *, start: float, width: float, bins: int
    ) -> list[TaskRunBin]:
        """Task runs counted by task name, state and start-time bin (one GROUP BY).

        Bin ``i`` holds the runs that started in ``[start + i * width,
        start + (i + 1) * width)``; runs that started before ``start`` count
        in bin 0, after the last bin in bin ``bins - 1``; runs not started
        yet have bin None. Rows come sorted by task name, bin and state.
        """

    def count_task_runs(self, flow_run_id: str) -> dict[str, dict[StateType, int]]:
        """``{task_name: {state: count}}`` for a flow run (fast at 1,000,000 runs)."""

    def list_transitions(
        self, flow_run_id: str, task_run_id: str | None = None
    ) -> list[TransitionRow]:
        """State changes of a flow run (task_run_id None: the flow's own) or a task run."""

    def list_logs(
        self,
        flow_run_id: str,
        *,
        task: str | None = None,
        limit: int | None = None,
        newest: bool = False,
    ) -> list[LogRow]:
        """Log records of a flow run and its task runs, oldest first.

        With ``limit``, the first ``limit`` records, or with ``newest`` the
        last ``limit`` (still in time order): the tail of a long run's log.
        """

    def list_artifacts(
        self,
        *,
        flow_run_id: str | None = None,
        key: str | None = None,
        artifact_id: str | None = None,
        latest: bool = False,
        limit: int | None = None,
    ) -> list[ArtifactRow]:
        """Artifacts, newest first (by creation time), filtered by what is given.

        ``flow_run_id``: those of one flow run (its task runs' included);
        ``key``: the history of one key; ``artifact_id``: that one. With
        ``latest``, only the newest artifact of each key (artifacts without
        a key are left out).
        """

    def list_task_edges(self, flow_run_id: str, *, runs: bool = False) -> list[tuple[str, str]]:
        """A flow run's recorded dependencies, ``(upstream, downstream)``, sorted.

        Pairs of task names; with ``runs``, pairs of task run ids (recorded
        for a run's first task runs only: see :mod:`daskflow.store.graph`).
        """

    def bin_resources(
        self, flow_run_id: str, *, start: float, width: float, bins: int
    ) -> list[ResourceBin]:
        """Worker CPU and memory of a flow run, averaged per worker and time bin.

        Bins as in :meth:`bin_task_runs` (samples outside them count in the
        first or last); rows sorted by worker and bin; empty when no samples
        were recorded (a run without a cluster, or from before they were).
        """

    def close(self) -> None:
        """Release connections."""

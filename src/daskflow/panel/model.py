"""The panel's one model: what every view shows, read from the run store.

The engine writes each flow run's events to the run store in batches (within
about half a second of a state change), so polling the store is how live runs
appear, in this process, on a remote cluster, or in another process
altogether (``daskflow dashboard``). :meth:`PanelModel.refresh` runs every
half second, so each refresh is a handful of bounded queries whatever the
size of the runs:

- the recent flow runs (one ``list_flow_runs``; a second one, filtered in
  SQL, while the user filters by flow or state) and their task counts;
- for the *selected* flow run: its counts per task name and state (one
  GROUP BY on a covering index), then either its task runs (up to
  :data:`TIMELINE_LIMIT`, drawn one bar each) or, for a bigger run, a
  histogram of them per task name and time bin (``bin_task_runs``), its
  failed task runs and its first log records;
- its graph: the recorded dependencies (``list_task_edges``, a DISTINCT over
  a few rows per task name), laid out only when they change; and its worker
  samples binned (``bin_resources``), read at most once a second, and like
  the histogram at most a tenth of the time (a live run of an hour on 100
  workers is 360,000 samples, about 0.4 s to bin).

What cannot change is not read again: a flow run that ended more than
:data:`SETTLED_AFTER` seconds ago is read once; failed task runs are read
when their number changes; a live big run is re-binned at most a tenth of
the time (the GROUP BY costs about 0.1 s at 100,000 task runs). The store
part (:meth:`PanelModel.refresh_store`) may run in a thread, so that a slow
query never holds up the event loop of the scheduler the page is served
from; the scheduler part (:meth:`PanelModel.refresh_resources`) runs on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from daskflow.panel.rungraph import RUN_NODES, RunGraph, build_graph, layered_layout
from daskflow.panel.seen import FIRST_LOOK, SeenMark
from daskflow.panel.usage import Usage, read_usage
from daskflow.states import StateType
from daskflow.store.base import (
    FlowRunRow,
    LogRow,
    RunStore,
    TaskRunBin,
    TaskRunRow,
    TransitionRow,
)

__all__ = [
    "ALERT_STATES",
    "FAILED_STATES",
    "TIMELINE_LIMIT",
    "Histogram",
    "PanelModel",
    "Resources",
]

#: Past this many task runs the timeline shows counts per task name and time bin.
TIMELINE_LIMIT = 2_000
#: Cells (task names x time bins) of the aggregated timeline, and its bins per task name.
TIMELINE_CELLS, MIN_BINS, MAX_BINS = 4_000, 20, 200
#: Flow runs listed, failed task runs and log records shown.
RECENT_RUNS, FAILURES_SHOWN, LOGS_SHOWN = 50, 200, 200
#: Retried task runs whose attempts the timeline draws one by one.
ATTEMPTS_SHOWN = 100
#: Seconds after its end when a flow run's task runs no longer change (events in flight).
SETTLED_AFTER = 5.0
#: Share of the time a live big run's histogram query may take.
HISTOGRAM_SHARE = 0.1
#: Seconds between two reads of a live run's worker samples (recorded once a second).
USAGE_EVERY = 1.0
FAILED_STATES = (StateType.FAILED, StateType.TIMED_OUT, StateType.CRASHED)
#: Flow-run states the alerts banner names, and how many alerts it keeps.
ALERT_STATES = (StateType.FAILED, StateType.CRASHED, StateType.TIMED_OUT)
ALERTS_KEPT = 100

Counts = dict[str, dict[StateType, int]]


@dataclass(frozen=True, slots=True)
class Histogram:
    """The aggregated timeline of a big flow run: task runs per task name and time bin.

    Bin ``i`` spans ``[start + i * width, start + (i + 1) * width)`` seconds
    since the epoch; ``rows`` come from :meth:`RunStore.bin_task_runs`.
    """

    start: float
    width: float
    bins: int
    rows: tuple[TaskRunBin, ...]

    def edges(self, index: int) -> tuple[float, float]:
        """Where bin ``index`` starts and ends (seconds since the epoch)."""
        left = self.start + index * self.width
        return left, left + self.width

    def spans(self) -> dict[str, tuple[int, float | None, float | None]]:
        """``{task_name: (task runs, first start, end of the last start's bin)}``.

        Times are to a bin's width (not read per run: that would cost the
        GROUP BY a sixth more); None while none of them has started.
        """
        spans: dict[str, tuple[int, float | None, float | None]] = {}
        for row in self.rows:
            count, first, last = spans.get(row.task_name, (0, None, None))
            if row.bin is not None:
                left, right = self.edges(row.bin)
                first = left if first is None else min(first, left)
                last = right if last is None else max(last, right)
            spans[row.task_name] = (count + row.count, first, last)
        return spans


@dataclass(frozen=True, slots=True)
class Resources:
    """One sample of the cluster: mean worker CPU (%) and total worker memory (bytes)."""

    time: float
    workers: int
    cpu: float
    memory: float


class PanelModel:
    """What the panel shows, refreshed from a run store.

    Parameters
    ----------
    store
        The run store to read (only read: the panel never changes a run).
    scheduler
        A ``distributed.Scheduler`` in this process (the panel served on the
        Dask dashboard), for worker CPU and memory; None otherwise.
    clock
        Seconds since the epoch (tests pass their own).
    seen
        Where the user's "seen" mark is kept (default: beside the store,
        :meth:`SeenMark.for_store <daskflow.panel.seen.SeenMark.for_store>`).

    Attributes
    ----------
    selected : str or None
        The flow run the detail views show: the newest one (``follow``) until
        :meth:`select` picks one.
    flow_filter, state_filter
        What the runs table lists (None: everything).
    flow_runs : list of FlowRunRow
        Recent flow runs, newest first, filtered.
    run : FlowRunRow or None
        The selected flow run.
    counts : dict
        ``{task_name: {state: count}}`` of the selected run.
    task_runs, attempts, histogram
        Its timeline: task runs (and the transitions of retried ones) up to
        :data:`TIMELINE_LIMIT`, else a :class:`Histogram`.
    failures, logs
        Its failed task runs and log records.
    alerts : list of FlowRunRow
        Flow runs that failed, crashed or timed out since the user last
        looked (:attr:`seen_until`), newest first, also those that ended
        before the page was opened.
    seen_until : float
        The store's "seen" mark (:mod:`daskflow.panel.seen`), else
        :data:`~daskflow.panel.seen.FIRST_LOOK` seconds before the page opened.
    resources : Resources or None
        The latest sample of the attached scheduler's workers.
    graph : RunGraph or None
        The selected run's graph, laid out (:mod:`daskflow.panel.rungraph`).
    usage : Usage or None
        The selected run's recorded worker CPU and memory
        (:mod:`daskflow.panel.usage`).

    Examples
    --------
    >>> from daskflow.store import MemoryStore
    >>> model = PanelModel(MemoryStore())
    >>> model.refresh()
    >>> model.flow_runs, model.selected
    ([], None)
    """

    def __init__(
        self,
        store: RunStore,
        scheduler: Any = None,
        clock: Callable[[], float] = time.time,
        seen: SeenMark | None = None,
    ) -> None:
        self.store = store
        self.scheduler = scheduler
        self.clock = clock
        self.opened = clock()
        self.seen = SeenMark.for_store(store) if seen is None else seen
        mark = self.seen.read()
        self.seen_until = self.opened - FIRST_LOOK if mark is None else mark
        self._chosen = 0  # bumped by select(): a refresh in a thread must not undo a click
        self.selected: str | None = None
        self.follow = True
        self.flow_filter: str | None = None
        self.state_filter: StateType | None = None
        self.flow_runs: list[FlowRunRow] = []
        self.flow_names: list[str] = []
        self.run_counts: dict[str, Counts] = {}
        self.run: FlowRunRow | None = None
        self.counts: Counts = {}
        self.task_runs: list[TaskRunRow] = []
        self.attempts: dict[str, list[TransitionRow]] = {}
        self.histogram: Histogram | None = None
        self.failures: list[TaskRunRow] = []
        self.logs: list[LogRow] = []
        self.alerts: list[FlowRunRow] = []
        self.resources: Resources | None = None
        self.graph: RunGraph | None = None
        self.usage: Usage | None = None
        self._recorded_of: str | None = None  # the run graph and usage are of this run
        self._recorded_settled = False
        self._usage_due = 0.0
        self._layout: tuple[Any, dict[str, tuple[float, float]]] = (None, {})
        self._names: set[str] = set()
        self._alerts: dict[str, FlowRunRow] = {}
        self._counted: dict[str, tuple[Counts, float]] = {}  # run id: (counts, read at)
        self._reset_detail(None)

    def select(self, flow_run_id: str | None) -> None:
        """Show this flow run (an id or unique prefix) in the detail views; None: the newest."""
        self.follow = flow_run_id is None
        self.selected = flow_run_id
        self._chosen += 1

    def dismiss_alerts(self) -> None:
        """The user has seen the failures so far: clear the alerts and keep the mark."""
        self.seen_until = self.clock()
        self.seen.write(self.seen_until)
        self._alerts, self.alerts = {}, []

    @property
    def total(self) -> int:
        """Task runs of the selected flow run."""
        return sum(sum(by_state.values()) for by_state in self.counts.values())

    @property
    def spans(self) -> dict[str, tuple[int, float | None, float | None]]:
        """Per task name of a big run: ``(task runs, first start, last end)``; else empty."""
        return {} if self.histogram is None else self.histogram.spans()

    def refresh(self) -> None:
        """Read what changed since the last refresh: the store, then the scheduler."""
        self.refresh_store()
        self.refresh_resources()

    def refresh_store(self) -> None:
        """The store's part of :meth:`refresh` (a few bounded queries; thread-safe to offload)."""
        store, now = self.store, self.clock()
        chosen, follow, wanted = self._chosen, self.follow, self.selected
        every = store.list_flow_runs(limit=RECENT_RUNS)
        filtered = self.flow_filter is not None or self.state_filter is not None
        shown = (
            store.list_flow_runs(flow=self.flow_filter, state=self.state_filter, limit=RECENT_RUNS)
            if filtered
            else every
        )
        self._names.update(r.flow_name for r in (*every, *shown))
        self.flow_names = sorted(self._names)
        seen_until = self.seen_until
        for run in every:
            if run.state in ALERT_STATES and _ended(run) > seen_until:
                self._alerts[run.id] = run
        alerts = [r for r in self._alerts.values() if _ended(r) > seen_until]
        self.alerts = sorted(alerts, key=_ended, reverse=True)[:ALERTS_KEPT]
        self._alerts = {run.id: run for run in self.alerts}
        self.run_counts = {run.id: self._count(run, now) for run in shown}
        self._counted = {k: v for k, v in self._counted.items() if k in self.run_counts}
        self.flow_runs = shown
        if follow:
            wanted = shown[0].id if shown else None
        found = self._find(wanted, every, shown)
        if chosen != self._chosen:
            return  # the user picked another run meanwhile: the next refresh shows it
        self.run = found
        self.selected = found.id if found is not None else wanted  # a URL's prefix becomes the id
        self._refresh_selected(now)
        self._refresh_recorded(now)

    def refresh_resources(self) -> None:
        """Mean worker CPU and total worker memory now, if a scheduler is attached.

        Runs on the scheduler's event loop: ``scheduler.workers`` is not safe
        to read from another thread.
        """
        scheduler = self.scheduler
        if scheduler is None:
            self.resources = None
            return
        workers = list(scheduler.workers.values())
        cpu = memory = 0.0
        for worker in workers:
            metrics = worker.metrics or {}
            cpu += float(metrics.get("cpu", 0.0) or 0.0)
            memory += float(metrics.get("memory", 0.0) or 0.0)
        self.resources = Resources(self.clock(), len(workers), cpu / (len(workers) or 1), memory)

    # -- the selected flow run ------------------------------------------------------
    def _count(self, run: FlowRunRow, now: float) -> Counts:
        """Task counts of a listed run; a settled run's counts are read once."""
        known = self._counted.get(run.id)
        if (
            known is not None
            and run.end_time is not None
            and known[1] > run.end_time + SETTLED_AFTER
        ):
            return known[0]
        counts = self.store.count_task_runs(run.id)
        # settled only if read once the run was seen ended: its last records can reach the
        # store later than SETTLED_AFTER past the end time its own clock gave
        self._counted[run.id] = (counts, now if run.end_time is not None else 0.0)
        return counts

    def _find(self, flow_run_id: str | None, *listed: list[FlowRunRow]) -> FlowRunRow | None:
        if flow_run_id is None:
            return None
        for runs in listed:
            for run in runs:
                if run.id == flow_run_id:
                    return run
        return self.store.get_flow_run(flow_run_id)  # an older run, or an id prefix

    def _reset_detail(self, flow_run_id: str | None) -> None:
        self._detail_of = flow_run_id
        self._settled = False
        self._failed: int | None = None
        self._histogram_due = 0.0
        self._transitions: dict[str, tuple[tuple[int, StateType], list[TransitionRow]]] = {}
        self.counts, self.task_runs, self.attempts = {}, [], {}
        self.histogram, self.failures, self.logs = None, [], []

    def _refresh_selected(self, now: float) -> None:
        run, store = self.run, self.store
        if run is None:
            self._reset_detail(None)
            return
        if run.id != self._detail_of:
            self._reset_detail(run.id)
        if self._settled:  # everything but the logs was read after the run ended
            self.logs = store.list_logs(run.id, limit=LOGS_SHOWN, newest=True)
            return
        settled = run.end_time is not None and now > run.end_time + SETTLED_AFTER
        listed = self.run_counts.get(run.id)
        self.counts = listed if listed is not None else store.count_task_runs(run.id)
        if self.total <= TIMELINE_LIMIT:
            self.histogram = None
            self.task_runs = store.list_task_runs(run.id, limit=TIMELINE_LIMIT)
            self.attempts = self._read_attempts(run.id)
        else:
            self.task_runs, self.attempts = [], {}
            if self.histogram is None or settled or time.monotonic() >= self._histogram_due:
                began = time.perf_counter()
                self.histogram = self._read_histogram(run, now)
                cost = time.perf_counter() - began
                self._histogram_due = time.monotonic() + cost * (1 / HISTOGRAM_SHARE - 1)
        failing = {  # task name: its failed task runs
            name: n
            for name, by_state in self.counts.items()
            if (n := sum(by_state.get(s, 0) for s in FAILED_STATES))
        }
        failed = sum(failing.values())
        if failed != self._failed or settled:  # failed task runs are final: read when more
            self.failures = (
                store.list_task_runs(
                    run.id, task=sorted(failing), states=FAILED_STATES, limit=FAILURES_SHOWN
                )
                if failed
                else []
            )
            self._failed = failed
        self.logs = store.list_logs(run.id, limit=LOGS_SHOWN, newest=True)
        self._settled = settled

    def _refresh_recorded(self, now: float) -> None:
        """The selected run's graph and worker usage; read once after the run settled.

        The graph costs a DISTINCT over the run's few edge rows, and is laid
        out again only when its nodes or edges change; samples are read at
        most every :data:`USAGE_EVERY` seconds, and at most
        :data:`HISTOGRAM_SHARE` of the time (one GROUP BY).
        """
        run, store = self.run, self.store
        if run is None or run.id != self._recorded_of:
            self._recorded_of = None if run is None else run.id
            self._recorded_settled, self._usage_due = False, 0.0
            self.graph, self.usage = None, None
        if run is None or self._recorded_settled:
            return
        settled = run.end_time is not None and now > run.end_time + SETTLED_AFTER
        small = 0 < self.total <= RUN_NODES
        graph = build_graph(
            self.counts,
            store.list_task_edges(run.id),
            self.task_runs if small else (),
            store.list_task_edges(run.id, runs=True) if small else (),
        )
        key = (tuple(node.id for node in graph.nodes), graph.edges)
        if self._layout[0] != key:
            self._layout = (key, layered_layout(key[0], graph.edges))
        at = self._layout[1]
        nodes = tuple(replace(n, x=at[n.id][0], y=at[n.id][1]) for n in graph.nodes)
        self.graph = replace(graph, nodes=nodes)
        if settled or self.usage is None or time.monotonic() >= self._usage_due:
            began = time.perf_counter()
            self.usage = read_usage(store, run, now)
            cost = time.perf_counter() - began  # an hour of 100 workers: about 0.4 s
            self._usage_due = time.monotonic() + max(USAGE_EVERY, cost / HISTOGRAM_SHARE - cost)
        self._recorded_settled = settled

    def _read_attempts(self, flow_run_id: str) -> dict[str, list[TransitionRow]]:
        """Transitions of retried task runs, re-read only when their attempts or state change."""
        attempts = {}
        for row in [r for r in self.task_runs if r.attempts > 1][:ATTEMPTS_SHOWN]:
            key = (row.attempts, row.state)
            known = self._transitions.get(row.id)
            if known is None or known[0] != key:
                known = (key, self.store.list_transitions(flow_run_id, row.id))
                self._transitions[row.id] = known
            attempts[row.id] = known[1]
        return attempts

    def _read_histogram(self, run: FlowRunRow, now: float) -> Histogram:
        """Bins over the flow run's life (to now while it runs), fewer when many task names."""
        start = run.start_time if run.start_time is not None else run.created
        end = run.end_time if run.end_time is not None else max(now, start)
        bins = max(MIN_BINS, min(MAX_BINS, TIMELINE_CELLS // max(len(self.counts), 1)))
        width = max(end - start, 1e-3) / bins
        rows = self.store.bin_task_runs(run.id, start=start, width=width, bins=bins)
        return Histogram(start, width, bins, tuple(rows))


def _ended(run: FlowRunRow) -> float:
    return run.end_time if run.end_time is not None else run.created

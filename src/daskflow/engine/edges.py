"""The dependencies of a flow run's task runs, aggregated for the run store.

Each :class:`~daskflow.engine.runs.TaskRun` knows the runs whose values it
takes (``upstream``). When the runner publishes the creation of runs it asks
an :class:`EdgeRecorder` for the dependencies not reported yet, and
publishes them in the same batch as a
:class:`~daskflow.observers.events.TaskEdgesAdded`: no message, lock or
store write of its own. What is kept per flow run is bounded by its task
names, not its task runs:

- pairs of task names (``load -> clean``), each once per flow run, however
  many task runs it joins: a map of 100,000 elements is one pair;
- pairs of task run ids among the first :data:`RUN_EDGES_KEPT` task runs
  only, so that the panel can draw a small run one node per task run.

Only dependencies inside the flow run count: an upstream run of another
flow run (a future passed into a subflow) or a dataframe partition is not a
task run of this one.
"""

from __future__ import annotations

from collections.abc import Sequence

from daskflow.engine.runs import TaskRun
from daskflow.observers.events import TaskEdgesAdded

__all__ = ["RUN_EDGES_KEPT", "EdgeRecorder"]

#: Task runs of a flow run whose own dependencies are recorded (a small run's graph).
RUN_EDGES_KEPT = 50


class EdgeRecorder:
    """The dependencies of one flow run reported so far.

    Called by the runner with the runs it publishes, under its flush lock
    (or, with ``cluster="sync"``, from the thread that calls the task). Two
    calls at once can at worst report a pair twice, which the store reads
    once.

    Parameters
    ----------
    flow_run_id
        The flow run whose runs are recorded.
    known
        Task run ids of this flow run (the runner's ``by_id``): an upstream
        run not in it is not part of the run's graph.
    """

    def __init__(self, flow_run_id: str, known: dict[str, TaskRun]) -> None:
        self.flow_run_id = flow_run_id
        self._known = known
        self._pairs: set[tuple[str, str]] = set()
        self._graphed: set[str] = set()  # ids of the first runs, whose own pairs are kept

    def new_edges(self, runs: Sequence[TaskRun]) -> TaskEdgesAdded | None:
        """The pairs these runs add, or None when they add none."""
        pairs, seen, known = [], self._pairs, self._known
        run_pairs: list[tuple[str, str]] = []
        graphed = self._graphed
        for run in runs:
            upstream = run.upstream
            if len(graphed) < RUN_EDGES_KEPT:
                graphed.add(run.id)  # a deferred run comes again with its upstream
            if not upstream:
                continue
            small = run.id in graphed
            name = run.task.name
            for up in upstream:
                if up.id not in known:
                    continue
                pair = (up.task.name, name)
                if pair not in seen:
                    seen.add(pair)
                    pairs.append(pair)
                if small:
                    if len(graphed) < RUN_EDGES_KEPT:
                        graphed.add(up.id)  # created first, maybe not published yet
                    if up.id in graphed:
                        run_pairs.append((up.id, run.id))
        if not pairs and not run_pairs:
            return None
        return TaskEdgesAdded(self.flow_run_id, tuple(pairs), tuple(dict.fromkeys(run_pairs)))

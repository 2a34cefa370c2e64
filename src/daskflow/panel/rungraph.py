"""The graph of a flow run, as the panel draws it: nodes, their counts, a layered layout.

What the store recorded (:mod:`daskflow.store.graph`) becomes a
:class:`RunGraph`:

- a node per **task name**, with its task runs counted per state (the same
  GROUP BY as the progress bars), so a run of 100,000 task runs is a graph
  of its few task names; edges join task names whose runs fed one another;
- a node per **task run** for a small run (:data:`RUN_NODES` task runs or
  fewer, when the store holds their own dependencies).

The layout is layered, top down: networkx finds the layers (the longest
path from a source, on the graph's condensation, so a task calling itself
in a loop or two that alternate share a layer), and each layer is ordered by
the mean position of its upstream nodes (a few barycenter sweeps, the step
of Sugiyama's method that removes most crossings). It is computed again
only when the nodes or edges change, not when counts do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from daskflow.states import StateType
from daskflow.store.base import TaskRunRow

__all__ = ["RUN_NODES", "GraphNode", "RunGraph", "build_graph", "layered_layout", "node_state"]

#: A flow run with this many task runs or fewer is drawn one node per task run.
RUN_NODES = 50
#: The buckets a node counts, in the order its label names them.
BUCKETS = ("completed", "failed", "running", "pending")
_BUCKET = {
    StateType.COMPLETED: "completed",
    StateType.CACHED: "completed",
    StateType.FAILED: "failed",
    StateType.TIMED_OUT: "failed",
    StateType.CRASHED: "failed",
    StateType.UPSTREAM_FAILED: "failed",
    StateType.RUNNING: "running",
    StateType.RETRYING: "running",
}


@dataclass(frozen=True, slots=True)
class GraphNode:
    """One node: a task name (``runs`` > 1 possible) or one task run."""

    id: str
    label: str
    counts: Mapping[str, int]  # per bucket of BUCKETS
    total: int
    state: StateType  # what colours it (see node_state)
    x: float = 0.0
    y: float = 0.0


@dataclass(frozen=True, slots=True)
class RunGraph:
    """Nodes (laid out) and edges ``(upstream id, downstream id)`` of one flow run."""

    nodes: tuple[GraphNode, ...]
    edges: tuple[tuple[str, str], ...]
    by_run: bool = False  # one node per task run
    loops: frozenset[str] = field(default_factory=frozenset)  # nodes that feed themselves


def node_state(counts: Mapping[str, int], total: int) -> StateType:
    """The state a node is coloured by: FAILED if any failed, else RUNNING while
    some ran and some wait, PENDING before any ran, COMPLETED when all did."""
    if counts.get("failed"):
        return StateType.FAILED
    if counts.get("running") or (counts.get("completed") and counts.get("pending")):
        return StateType.RUNNING
    if total and counts.get("completed", 0) == total:
        return StateType.COMPLETED
    return StateType.PENDING


def _bucketed(by_state: Mapping[StateType, int]) -> dict[str, int]:
    counts = dict.fromkeys(BUCKETS, 0)
    for state, n in by_state.items():
        counts[_BUCKET.get(state, "pending")] += n
    return counts


def build_graph(
    counts: Mapping[str, Mapping[StateType, int]],
    edges: Sequence[tuple[str, str]],
    task_runs: Sequence[TaskRunRow] = (),
    run_edges: Sequence[tuple[str, str]] = (),
) -> RunGraph:
    """The graph to draw (without positions: see :func:`layered_layout`).

    Parameters
    ----------
    counts
        ``{task_name: {state: count}}`` of the flow run.
    edges
        Recorded pairs of task names.
    task_runs, run_edges
        The run's task runs and their recorded pairs: with at most
        :data:`RUN_NODES` task runs, all listed, a node per task run.
    """
    total = sum(sum(by_state.values()) for by_state in counts.values())
    if task_runs and len(task_runs) == total <= RUN_NODES:
        nodes = []
        for row in task_runs:
            bucketed = _bucketed({row.state: 1})
            nodes.append(GraphNode(row.id, row.name, bucketed, 1, node_state(bucketed, 1)))
        ids = {row.id for row in task_runs}
        kept = tuple((u, d) for u, d in run_edges if u in ids and d in ids and u != d)
        return RunGraph(tuple(nodes), kept, by_run=True)
    nodes = []
    for name in sorted(counts):
        bucketed = _bucketed(counts[name])
        n = sum(bucketed.values())
        nodes.append(GraphNode(name, name, bucketed, n, node_state(bucketed, n)))
    names = set(counts)
    kept = tuple((u, d) for u, d in edges if u in names and d in names and u != d)
    loops = frozenset(u for u, d in edges if u == d and u in names)
    return RunGraph(tuple(nodes), kept, loops=loops)


def layered_layout(
    nodes: Iterable[str], edges: Iterable[tuple[str, str]], sweeps: int = 4
) -> dict[str, tuple[float, float]]:
    """``{node: (x, y)}``: layer ``i`` at ``y = -i``, nodes of a layer one apart in x, centred.

    Examples
    --------
    >>> layered_layout(["a", "b", "c"], [("a", "b"), ("a", "c")])
    {'a': (0.0, 0.0), 'b': (-0.5, -1.0), 'c': (0.5, -1.0)}
    """
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from((u, v) for u, v in edges if u != v)
    dag = nx.condensation(graph)  # cycles become one node: a layering needs a DAG
    level: dict[int, int] = {}
    for component in nx.topological_sort(dag):
        level[component] = max((level[p] + 1 for p in dag.predecessors(component)), default=0)
    members = dag.graph["mapping"]  # node -> component
    layers: dict[int, list[str]] = {}
    for node in graph.nodes:  # insertion order: ties keep the caller's order
        layers.setdefault(level[members[node]], []).append(node)
    order = [layers[i] for i in sorted(layers)]
    position = {node: float(i) for layer in order for i, node in enumerate(layer)}
    for sweep in range(sweeps):  # barycenters: down from upstream, then up from downstream
        down = sweep % 2 == 0
        for layer in order[1:] if down else order[-2::-1]:
            for node in layer:
                near = graph.predecessors(node) if down else graph.successors(node)
                seen = [position[n] for n in near if n in position]
                if seen:
                    position[node] = sum(seen) / len(seen)
            layer.sort(key=lambda n: position[n])
            position.update({node: float(i) for i, node in enumerate(layer)})
    return {
        node: (i - (len(layer) - 1) / 2, -float(depth))
        for depth, layer in enumerate(order)
        for i, node in enumerate(layer)
    }

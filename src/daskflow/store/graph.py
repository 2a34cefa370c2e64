"""The run graph in the run store: which tasks fed which, per flow run.

The engine knows each task run's upstream runs when it creates it, and
reports the dependencies aggregated (:class:`~daskflow.observers.events.TaskEdgesAdded`,
with the run's other events, in the same batches): one ``(upstream task
name, downstream task name)`` pair per flow run however many task runs it
joins, so a map of 100,000 elements adds one row, not 100,000. Among a flow
run's first task runs (:data:`daskflow.engine.edges.RUN_EDGES_KEPT`) it also
reports the task runs' own pairs, which draw a small run one node per task
run.

Both kinds live in the ``task_edges`` table (``kind`` "task" or "run"). A
flow run that is retried reports its pairs again: reads are ``DISTINCT``,
so a pair written twice is read once, on every database, with no upsert.
:class:`MemoryGraph` keeps the same in sets for the in-memory store.
SQLAlchemy is imported by the SQL functions only, when first called.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from daskflow.observers.events import TaskEdgesAdded

__all__ = ["EDGE_COLUMNS", "MemoryGraph", "edge_rows", "edges_query"]

Edge = tuple[str, str]


#: The columns of the rows :func:`edge_rows` gives, in order.
EDGE_COLUMNS = ("flow_run_id", "kind", "upstream", "downstream")


def edge_rows(events: Sequence[TaskEdgesAdded]) -> list[tuple[str, str, str, str]]:
    """The ``task_edges`` rows of a batch's :class:`TaskEdgesAdded` events."""
    rows: list[tuple[str, str, str, str]] = []
    for event in events:
        for kind, pairs in (("task", event.edges), ("run", event.run_edges)):
            rows.extend((event.flow_run_id, kind, u, d) for u, d in pairs)
    return rows


def edges_query(flow_run_id: str, runs: bool = False) -> Any:
    """The distinct pairs of a flow run, sorted: task names, or task run ids with ``runs``."""
    import sqlalchemy as sa

    from .schema import task_edges

    te = task_edges
    return (
        sa.select(te.c.upstream, te.c.downstream)
        .where(te.c.flow_run_id == flow_run_id, te.c.kind == ("run" if runs else "task"))
        .distinct()
        .order_by(te.c.upstream, te.c.downstream)
    )


class MemoryGraph:
    """The recorded edges of the in-memory store (its lock guards this)."""

    def __init__(self) -> None:
        self._edges: dict[tuple[str, bool], set[Edge]] = {}

    def add(self, events: Sequence[TaskEdgesAdded]) -> None:
        for event in events:
            for runs, pairs in ((False, event.edges), (True, event.run_edges)):
                if pairs:
                    self._edges.setdefault((event.flow_run_id, runs), set()).update(pairs)

    def edges(self, flow_run_id: str, runs: bool = False) -> list[Edge]:
        return sorted(self._edges.get((flow_run_id, runs), ()))

"""Worker CPU and memory in the run store, recorded with the flow run.

While a flow run goes on a cluster, the flow's process samples the
scheduler's view of its workers about once a second
(:mod:`daskflow.engine.resources`) and publishes each sample as a
:class:`~daskflow.observers.events.ResourcesSampled` event, which the store
writes with the run's other events (same batches, same transactions): one
``resource_samples`` row per worker and second. The panel then shows them
for a run that ended long ago, from the store alone.

The panel reads them binned (:func:`bins_query`): the mean CPU and memory of
each worker per time bin, one GROUP BY on the ``(flow_run_id, timestamp)``
index, so an hour of 100 workers (360,000 rows) comes back as a few
thousand. :class:`MemoryResources` does the same for the in-memory store.
SQLAlchemy is imported by the SQL functions only, when first called.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from daskflow.observers.events import ResourcesSampled

__all__ = [
    "SAMPLE_COLUMNS",
    "MemoryResources",
    "ResourceBin",
    "bins_query",
    "merge_resource_bins",
    "sample_rows",
]


@dataclass(frozen=True, slots=True)
class ResourceBin:
    """One worker's mean CPU (%) and memory (bytes) over one time bin of a flow run.

    Bin ``i`` spans ``[start + i * width, start + (i + 1) * width)``;
    ``samples`` is how many samples the means are of.
    """

    worker: str
    bin: int
    cpu: float
    memory: float
    samples: int


#: The columns of the rows :func:`sample_rows` gives, in order.
SAMPLE_COLUMNS = ("flow_run_id", "timestamp", "worker", "cpu", "memory")


def sample_rows(events: Sequence[ResourcesSampled]) -> list[tuple[Any, ...]]:
    """The ``resource_samples`` rows of a batch's samples (one per worker)."""
    return [
        (event.flow_run_id, event.timestamp, worker, float(cpu), float(memory))
        for event in events
        for worker, cpu, memory in event.workers
    ]


def bins_query(flow_run_id: str, start: float, width: float, dialect: str) -> Any:
    """Samples of a flow run grouped by worker and time bin (raw bin index, unclamped)."""
    import sqlalchemy as sa

    from .schema import resource_samples

    rs = resource_samples
    offset = (rs.c.timestamp - start) / width
    if dialect == "sqlite":  # CAST truncates; merge_resource_bins clamps below 0
        index: Any = sa.cast(offset, sa.Integer)
    else:  # PostgreSQL's CAST rounds
        index = sa.cast(sa.func.floor(offset), sa.Integer)
    index = index.label("bin")
    return (
        sa.select(
            rs.c.worker, index, sa.func.avg(rs.c.cpu), sa.func.avg(rs.c.memory), sa.func.count()
        )
        .where(rs.c.flow_run_id == flow_run_id)
        .group_by(rs.c.worker, index)
    )


def merge_resource_bins(
    groups: Iterable[tuple[str, int, float, float, int]], bins: int
) -> list[ResourceBin]:
    """:class:`ResourceBin` rows from ``(worker, raw bin, cpu, memory, samples)`` groups.

    Clamps each raw bin to ``[0, bins - 1]`` (samples before the start or
    after the last bin), merges the groups that land in one bin (means
    weighted by their samples), and sorts by worker and bin, so both stores
    answer alike.
    """
    merged: dict[tuple[str, int], tuple[float, float, int]] = {}
    for worker, raw, cpu, memory, count in groups:
        key = (worker, min(max(int(raw), 0), bins - 1))
        cpu_sum, memory_sum, n = merged.get(key, (0.0, 0.0, 0))
        merged[key] = (cpu_sum + float(cpu) * count, memory_sum + float(memory) * count, n + count)
    return [
        ResourceBin(worker, index, cpu / n, memory / n, n)
        for (worker, index), (cpu, memory, n) in sorted(merged.items())
    ]


class MemoryResources:
    """The samples of the in-memory store (its lock guards this)."""

    def __init__(self) -> None:
        self._samples: dict[str, list[ResourcesSampled]] = {}

    def add(self, events: Sequence[ResourcesSampled]) -> None:
        for event in events:
            self._samples.setdefault(event.flow_run_id, []).append(event)

    def bins(self, flow_run_id: str, start: float, width: float, bins: int) -> list[ResourceBin]:
        groups = (
            (worker, math.floor((event.timestamp - start) / width), cpu, memory, 1)
            for event in self._samples.get(flow_run_id, ())
            for worker, cpu, memory in event.workers
        )
        return merge_resource_bins(groups, bins)

"""Worker CPU and memory of a flow run, as recorded in the run store, for the panel.

The flow's process recorded a sample of its cluster's workers about once a
second (:mod:`daskflow.store.resources`); the panel reads them back binned
over the run's life, to the half second, at most :data:`USAGE_BINS` bins: one
GROUP BY whatever the length of the run and the number of its workers. So
the standalone panel (``daskflow dashboard``, no cluster attached) shows
them for live and past runs alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from daskflow.store.base import FlowRunRow, RunStore
from daskflow.store.resources import ResourceBin

__all__ = ["USAGE_BINS", "Usage", "read_usage"]

#: Time bins of a run's worker samples, at most, and their least width (seconds):
#: half the sampling interval, so a run of a second still draws a line (a bin
#: without a sample is no point, not a zero).
USAGE_BINS, LEAST_WIDTH = 300, 0.5


@dataclass(frozen=True, slots=True)
class Usage:
    """A flow run's samples per worker and time bin (bin ``i`` from ``start + i * width``)."""

    start: float
    width: float
    bins: int
    rows: tuple[ResourceBin, ...]

    @property
    def workers(self) -> list[str]:
        """The workers sampled, sorted."""
        return sorted({row.worker for row in self.rows})

    def center(self, index: int) -> float:
        """The middle of bin ``index`` (seconds since the epoch)."""
        return self.start + (index + 0.5) * self.width


def read_usage(store: RunStore, run: FlowRunRow, now: float) -> Usage:
    """Bins over the run's life (to ``now`` while it runs), half a second wide or more."""
    start = run.start_time if run.start_time is not None else run.created
    end = run.end_time if run.end_time is not None else max(now, start)
    span = max(end - start, LEAST_WIDTH)
    width = max(LEAST_WIDTH, span / USAGE_BINS)
    bins = max(1, math.ceil(span / width))
    rows = store.bin_resources(run.id, start=start, width=width, bins=bins)
    return Usage(start, width, bins, tuple(rows))

"""Pausing Python's cyclic garbage collector while daskflow makes many objects at once.

Expanding a ``.map`` of 10,000 elements, and submitting the batch that holds
them, allocates several objects per task run (runs, call specs, slots, Dask
tasks, futures), nearly all of which live until the flow run ends. Allocating
them triggers the cyclic collector over and over, including full collections
that walk every object of the process, the in-process scheduler's too. On a
10,000-task map (benchmarks/overhead.py, workload a) that was about half again
the collector time raw Dask spends on the same work, some 50 us of the
client's CPU per task run. Inside :func:`collector_paused` the collector waits. Its counters still
count what was allocated, so it runs once after the step if the allocations
call for it.

The pause is process-wide and short (one map expansion, one batch). Pauses
may nest or overlap (flows in threads): the collector is re-enabled when the
last one ends, and only if it was enabled when the first one began, so a
program that disabled it keeps it disabled.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

__all__ = ["collector_paused"]

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Keep the cyclic garbage collector from running during the block."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()

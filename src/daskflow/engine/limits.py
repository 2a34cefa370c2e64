"""Concurrency limits: at most N running task runs with a tag, across the cluster.

``daskflow.concurrency_limit("db", 5)`` (or config
``daskflow.concurrency-limits: {db: 5}``) caps the task runs carrying tag
``db`` that run at once, on every worker of the cluster. Each limit is a
``distributed.Semaphore`` named after the tag and its size: waiting is
event-driven on the scheduler (a waiting run starts as soon as a slot frees,
where Prefect polls every 30 s). A waiting run keeps its worker thread:
giving it back with ``secede`` and taking it again with ``rejoin`` was
measured to add about a second per wave of runs (benchmarks/limits.py), and
waiting runs cannot starve the runs that hold the slots (those already run).

A run holds its slots for one attempt: they are released before a retry's
delay and taken again for the next attempt. A task with several limited
tags takes their slots in one global order (sorted by tag), so two runs can
never each hold a slot the other waits for: no deadlock.

Under ``cluster="sync"`` runs go one at a time anyway: limits do nothing.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from daskflow.errors import ConfigurationError

__all__ = ["concurrency_limit", "held", "limits_for"]

Limits = tuple[tuple[str, int], ...]

_limits: dict[str, int] = {}
_semaphores: dict[str, Any] = {}
_lock = threading.Lock()


def concurrency_limit(tag: str, n: int) -> None:
    """Allow at most ``n`` task runs tagged ``tag`` to run at once, cluster-wide.

    Set it in the process that runs flows, before they run; it applies to task
    runs submitted from then on. Config ``daskflow.concurrency-limits`` (a
    mapping of tag to number) does the same without code.

    Examples
    --------
    >>> from daskflow import concurrency_limit, task
    >>> concurrency_limit("warehouse", 5)
    >>> @task(tags=["warehouse"])
    ... def load(rows: list[dict]) -> int:
    ...     return len(rows)
    """
    if not isinstance(tag, str) or not tag:
        raise ConfigurationError("concurrency_limit tag", tag, "a non-empty string")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigurationError(f"concurrency limit of tag {tag!r}", n, "a whole number >= 1")
    _limits[tag] = n


def limits_for(tags: Iterable[str]) -> Limits:
    """The limits that apply to a task with ``tags``, in the order they are taken."""
    from daskflow import config

    configured = config.get("concurrency-limits") or {}
    found = []
    for tag in tags:
        n = _limits.get(tag, configured.get(tag))
        if n is not None:
            found.append((tag, int(n)))
    return tuple(sorted(found))


@contextlib.contextmanager
def held(limits: Limits) -> Iterator[None]:
    """Hold one slot of each limit while the block runs (on a Dask worker)."""
    if not limits:
        yield
        return
    from daskflow.engine.emit import current_worker

    if current_worker() is None:
        yield
        return
    taken = []
    try:
        for tag, n in limits:
            semaphore = _semaphore(tag, n)
            semaphore.acquire()
            taken.append(semaphore)
        yield
    finally:
        for semaphore in reversed(taken):
            semaphore.release()


def _semaphore(tag: str, n: int) -> Any:
    name = f"daskflow-limit-{tag}-{n}"  # the size in the name: a changed limit is a new one
    semaphore = _semaphores.get(name)
    if semaphore is None:
        from distributed import Semaphore

        with _lock:
            semaphore = _semaphores.get(name)
            if semaphore is None:
                semaphore = _semaphores[name] = Semaphore(max_leases=n, name=name)
    return semaphore

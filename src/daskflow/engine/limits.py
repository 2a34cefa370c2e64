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

The same names serve code that asks for slots itself
(:mod:`daskflow.concurrency.sync`: ``with concurrency("db")``, and
``rate_limit("api")`` on a limit with ``slot_decay_per_second``): one
namespace, one ``Semaphore`` per name. :func:`limit_of` reads a name's limit
where it was set, in config, or, on a worker, in the limits the flow run
shipped with its facts (:mod:`daskflow.engine.flow_facts`).
"""

from __future__ import annotations

import contextlib
import numbers
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from daskflow.errors import ConfigurationError

__all__ = [
    "Limit",
    "concurrency_limit",
    "held",
    "limit_of",
    "limits_for",
    "semaphore_of",
    "snapshot",
]

Limits = tuple[tuple[str, int], ...]


class Limit(NamedTuple):
    """A named limit: at most ``n`` slots; ``decay`` slots free themselves per second (or None)."""

    n: int
    decay: float | None = None


_limits: dict[str, Limit] = {}
# per worker or client (a closed client's semaphores go with it), per limit name
_semaphores: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def concurrency_limit(tag: str, n: int, slot_decay_per_second: float | None = None) -> None:
    """Allow at most ``n`` task runs tagged ``tag`` to run at once, cluster-wide.

    Set it in the process that runs flows, before they run; it applies to task
    runs submitted from then on, and to ``with concurrency(tag):`` blocks
    (:mod:`daskflow.concurrency.sync`). Config ``daskflow.concurrency-limits``
    (a mapping of tag to number, or to ``{limit: n, slot-decay-per-second: d}``)
    does the same without code. With ``slot_decay_per_second`` the limit is
    also a rate limit: ``rate_limit(tag)`` takes slots that free themselves,
    ``d`` per second.

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
    _limits[tag] = _checked(tag, n, slot_decay_per_second)


def _checked(tag: str, n: Any, decay: Any) -> Limit:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigurationError(f"concurrency limit of tag {tag!r}", n, "a whole number >= 1")
    if decay is not None and (
        isinstance(decay, bool) or not isinstance(decay, numbers.Real) or decay <= 0
    ):
        raise ConfigurationError(
            f"slot_decay_per_second of limit {tag!r}", decay, "a number of slots per second > 0"
        )
    return Limit(n, None if decay is None else float(decay))


def _configured(name: str) -> Limit | None:
    from daskflow import config

    value = (config.get("concurrency-limits") or {}).get(name)
    if value is None:
        return None
    if isinstance(value, Mapping):
        return _checked(name, value.get("limit"), value.get("slot-decay-per-second"))
    return _checked(name, value, None)


def limit_of(name: str) -> Limit | None:
    """The limit named ``name``: set in code, in config, or shipped by the current flow run."""
    limit = _limits.get(name) or _configured(name)
    if limit is not None:
        return limit
    from daskflow.engine.flow_facts import facts_of
    from daskflow.runtime.flow_run import current_id

    facts = facts_of(current_id())
    shipped = facts.limits.get(name) if facts is not None and facts.limits else None
    return Limit(*shipped) if shipped is not None else None


def snapshot() -> dict[str, tuple[int, float | None]]:
    """The limits this process knows (code, then config), shipped with a flow run's facts."""
    from daskflow import config

    names = [*(config.get("concurrency-limits") or {}), *_limits]
    found = {name: limit_of(name) for name in dict.fromkeys(names)}
    return {name: (limit.n, limit.decay) for name, limit in found.items() if limit is not None}


def limits_for(tags: Iterable[str]) -> Limits:
    """The limits that apply to a task with ``tags``, in the order they are taken."""
    found = []
    for tag in tags:
        limit = _limits.get(tag) or _configured(tag)
        if limit is not None:
            found.append((tag, limit.n))
    return tuple(sorted(found))


def held(limits: Limits) -> contextlib.AbstractContextManager[None]:
    """Hold one slot of each limit while the block runs (on a Dask worker).

    A run without limits (the common case) gets a shared no-op context,
    not a new generator, as every attempt asks.
    """
    return _holding(limits) if limits else _NOTHING_HELD


_NOTHING_HELD = contextlib.nullcontext()


@contextlib.contextmanager
def _holding(limits: Limits) -> Iterator[None]:
    from daskflow.engine.emit import current_worker

    if current_worker() is None:
        yield
        return
    taken = []
    try:
        for tag, n in limits:
            semaphore = semaphore_of(tag, n)
            semaphore.acquire()
            taken.append(semaphore)
        yield
    finally:
        for semaphore in reversed(taken):
            semaphore.release()


def semaphore_of(tag: str, n: int, client: Any = None) -> Any:
    """The ``Semaphore`` of limit ``tag`` of size ``n`` on ``client``'s cluster.

    ``client`` defaults to the worker running this code, else the current
    client (``ValueError`` when there is none); one object per worker or
    client and name.
    """
    from daskflow.engine.emit import current_worker

    owner = client if client is not None else current_worker()
    if owner is None:
        from distributed import get_client

        owner = get_client()
    name = f"daskflow-limit-{tag}-{n}"  # the size in the name: a changed limit is a new one
    semaphore = _semaphores.get(owner, {}).get(name)
    if semaphore is None:
        from distributed import Semaphore

        with _lock:
            known = _semaphores.setdefault(owner, {})
            semaphore = known.get(name)
            if semaphore is None:
                semaphore = known[name] = Semaphore(
                    max_leases=n, name=name, scheduler_rpc=owner.scheduler, loop=owner.loop
                )
    return semaphore

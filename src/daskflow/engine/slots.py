"""Slots of named limits taken by code itself: ``concurrency(...)`` and ``rate_limit(...)``.

The names are those of :mod:`daskflow.engine.limits`, so ``with
concurrency("db"):`` and task runs tagged ``db`` share the same slots (one
``distributed.Semaphore`` per name on the cluster's scheduler). Code in a
task takes them through its worker; code in a flow function through the
flow's client; elsewhere through the current ``distributed.Client``. With
no Dask cluster at all (``cluster="sync"``) there is nothing to share and
nothing is limited.

``occupy=k`` takes ``k`` slots one by one; two blocks each taking several
could each hold some and wait for the rest, so blocks taking more than one
slot of a limit take them under a lock of that limit (blocks taking one
never wait for it). Several names are taken in sorted order, like a task's
tags.

A rate limit (a limit with ``slot_decay_per_second``) is a token bucket on
the scheduler: :func:`take_rate` adds ``occupy`` to the limit's level,
which falls by the decay rate every second; when the level would pass the
limit it waits the time the decay needs. Slots taken by a rate limit are
never released: they free themselves.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from daskflow.engine.limits import Limit, limit_of, semaphore_of
from daskflow.errors import ConcurrencyTimeout, ConfigurationError

__all__ = ["acquire", "owner", "release", "take_rate"]

logger = logging.getLogger("daskflow.concurrency")

_warned: set[str] = set()

#: What :func:`acquire` took, to give back with :func:`release`: (semaphore, count) pairs.
Taken = list[tuple[Any, int]]


def owner() -> Any:
    """What talks to the scheduler from here: this thread's Dask worker, else the current client.

    None without a Dask cluster (``cluster="sync"``, no client): nothing is limited then.
    """
    from daskflow.engine.emit import current_worker

    worker = current_worker()
    if worker is not None:
        return worker
    try:
        from distributed import get_client

        return get_client()
    except ValueError:
        return None


def _names(names: str | Sequence[str]) -> list[str]:
    listed = [names] if isinstance(names, str) else list(names)
    if not listed or not all(isinstance(n, str) and n for n in listed):
        raise ConfigurationError("concurrency names", names, "a name or a list of names")
    return sorted(set(listed))


def _limits(names: list[str], occupy: int, strict: bool) -> list[tuple[str, Limit]]:
    if isinstance(occupy, bool) or not isinstance(occupy, int) or occupy < 1:
        raise ConfigurationError("occupy", occupy, "a whole number of slots >= 1")
    found = []
    for name in names:
        limit = limit_of(name)
        if limit is None:
            _unknown(name, strict)
            continue
        if occupy > limit.n:
            raise ConfigurationError(
                "occupy", occupy, f"at most the {limit.n} slot(s) of limit {name!r}"
            )
        found.append((name, limit))
    return found


def _unknown(name: str, strict: bool) -> None:
    expected = (
        f"a limit set with daskflow.concurrency_limit({name!r}, n) or in config "
        "daskflow.concurrency-limits"
    )
    if strict:
        raise ConfigurationError("concurrency limit", name, expected)
    if name in _warned:
        return
    _warned.add(name)
    message = "concurrency limit %r is not set, so this runs unlimited (expected %s)"
    try:
        from daskflow.engine.run_logs import get_run_logger

        get_run_logger().warning(message, name, expected)
    except Exception:  # outside a run
        logger.warning("daskflow: " + message, name, expected)


def acquire(
    names: str | Sequence[str],
    occupy: int = 1,
    timeout: float | None = None,
    strict: bool = False,
    via: Any = None,
) -> Taken:
    """Take ``occupy`` slots of each limit named; raise ConcurrencyTimeout after ``timeout`` s."""
    limits = _limits(_names(names), occupy, strict)
    via = via if via is not None else owner()
    if via is None or not limits:
        return []
    deadline = None if timeout is None else time.monotonic() + timeout
    taken: Taken = []
    try:
        for name, limit in limits:
            semaphore = semaphore_of(name, limit.n, via)
            if occupy == 1:
                _take(semaphore, name, deadline, timeout)
            else:
                gate = semaphore_of(f"{name}/occupy", 1, via)
                _take(gate, name, deadline, timeout)
                try:
                    for _ in range(occupy):
                        _take(semaphore, name, deadline, timeout)
                        taken.append((semaphore, 1))
                finally:
                    gate.release()
                continue
            taken.append((semaphore, 1))
    except BaseException:
        release(taken)
        raise
    return taken


def _take(semaphore: Any, name: str, deadline: float | None, timeout: float | None) -> None:
    if deadline is None:
        semaphore.acquire()
        return
    if not semaphore.acquire(timeout=max(0.0, deadline - time.monotonic())):
        raise ConcurrencyTimeout(name, timeout or 0.0)


def release(taken: Taken) -> None:
    """Give back what :func:`acquire` took, last first."""
    for semaphore, count in reversed(taken):
        for _ in range(count):
            semaphore.release()


def take_rate(
    names: str | Sequence[str],
    occupy: int = 1,
    timeout: float | None = None,
    strict: bool = False,
    via: Any = None,
) -> None:
    """Take ``occupy`` slots of each rate limit named, waiting while they decay."""
    limits = _limits(_names(names), occupy, strict)
    for name, limit in limits:
        if limit.decay is None:
            raise ConfigurationError(
                f"rate_limit({name!r})",
                limit.n,
                "a limit with slot_decay_per_second (concurrency_limit(name, n, "
                "slot_decay_per_second=d)); use concurrency() for a limit without decay",
            )
    via = via if via is not None else owner()
    if via is None:
        return
    deadline = None if timeout is None else time.monotonic() + timeout
    for name, limit in limits:
        while True:
            wait = _on_scheduler(via, _take_tokens, f"{name}-{limit.n}", limit, occupy)
            if wait <= 0:
                break
            if deadline is not None and time.monotonic() + wait > deadline:
                raise ConcurrencyTimeout(name, timeout or 0.0)
            time.sleep(wait)


def _on_scheduler(via: Any, fn: Any, *args: Any) -> Any:
    """``fn(*args, dask_scheduler=...)`` run on the scheduler of ``via`` (a worker or a client)."""
    from distributed.protocol.pickle import dumps
    from distributed.utils import sync

    response = sync(
        via.loop,
        via.scheduler.run_function,
        function=dumps(fn),
        args=dumps(args),
        kwargs=dumps({}),
        wait=True,
    )
    if response["status"] != "OK":
        raise RuntimeError(f"daskflow: a rate limit failed on the scheduler: {response}")
    return response["result"]


def _take_tokens(key: str, limit: Limit, occupy: int, dask_scheduler: Any = None) -> float:
    """On the scheduler: take ``occupy`` from bucket ``key``; 0, or the seconds to wait first."""
    buckets = getattr(dask_scheduler, "_daskflow_rate_limits", None)
    if buckets is None:
        buckets = {}
        dask_scheduler._daskflow_rate_limits = buckets
    now = time.monotonic()
    level, last = buckets.get(key, (0.0, now))
    decay = limit.decay or 1.0
    level = max(0.0, level - decay * (now - last))
    if level + occupy <= limit.n:
        buckets[key] = (level + occupy, now)
        return 0.0
    buckets[key] = (level, now)
    return (level + occupy - limit.n) / decay

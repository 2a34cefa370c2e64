"""``concurrency`` and ``rate_limit`` for plain code, as in ``prefect.concurrency.sync``.

Examples
--------
>>> from daskflow import concurrency_limit, task
>>> from daskflow.concurrency.sync import concurrency, rate_limit
>>> concurrency_limit("db", 2)
>>> concurrency_limit("api", 5, slot_decay_per_second=2)
>>> @task
... def load(rows: list[int]) -> int:
...     rate_limit("api")           # at most 2 per second, after a burst of 5
...     with concurrency("db"):     # at most 2 at once, with task runs tagged "db"
...         return len(rows)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from daskflow.engine.slots import acquire, release, take_rate

__all__ = ["concurrency", "rate_limit"]


@contextlib.contextmanager
def concurrency(
    names: str | Sequence[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    strict: bool = False,
) -> Iterator[None]:
    """Hold ``occupy`` slots of each named limit while the block runs, cluster-wide.

    Parameters
    ----------
    names
        A limit's name, or several (taken in sorted order, so two blocks never
        deadlock on each other's names).
    occupy
        Slots to take of each.
    timeout_seconds
        Give up waiting after this long: :class:`~daskflow.errors.ConcurrencyTimeout`.
    strict
        A name with no limit set raises :class:`~daskflow.errors.ConfigurationError`
        (else the block runs unlimited, with one warning per name).
    """
    taken = acquire(names, occupy, timeout_seconds, strict)
    try:
        yield
    finally:
        release(taken)


def rate_limit(
    names: str | Sequence[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    strict: bool = False,
) -> None:
    """Take ``occupy`` slots of each named rate limit; they free themselves by decay.

    Returns once the slots are taken: at most the limit's size at once, then
    ``slot_decay_per_second`` per second. The limit must have been set with
    ``slot_decay_per_second`` (a :class:`~daskflow.errors.ConfigurationError` otherwise).
    """
    take_rate(names, occupy, timeout_seconds, strict)

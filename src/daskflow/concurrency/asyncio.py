"""``concurrency`` and ``rate_limit`` for ``async`` code, as in ``prefect.concurrency.asyncio``.

The same limits as :mod:`daskflow.concurrency.sync`; waiting for a slot
happens in a thread, so the event loop goes on meanwhile.

Examples
--------
>>> from daskflow.concurrency.asyncio import concurrency, rate_limit
>>> async def fetch(url: str) -> None:
...     await rate_limit("api")
...     async with concurrency("db", occupy=1):
...         ...
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

from daskflow.engine.slots import acquire, owner, release, take_rate

__all__ = ["concurrency", "rate_limit"]


@contextlib.asynccontextmanager
async def concurrency(
    names: str | Sequence[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    strict: bool = False,
) -> AsyncIterator[None]:
    """Hold ``occupy`` slots of each named limit while the block runs (see the sync version)."""
    via = owner()  # this thread's worker or client: the waiting thread has neither
    taken = await asyncio.to_thread(acquire, names, occupy, timeout_seconds, strict, via)
    try:
        yield
    finally:
        await asyncio.to_thread(release, taken)


async def rate_limit(
    names: str | Sequence[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    strict: bool = False,
) -> None:
    """Take ``occupy`` slots of each named rate limit (see the sync version)."""
    via = owner()
    await asyncio.to_thread(take_rate, names, occupy, timeout_seconds, strict, via)

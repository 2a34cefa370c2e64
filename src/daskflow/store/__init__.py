"""The run store: every flow run, task run, transition and log, durable.

:func:`open_store` opens the configured store (SQLite by default, any
SQLAlchemy URL, or ``"memory"``); :func:`default_observer` registers the one
observer that writes the engine's events into it. :class:`SQLStore` is
imported on first use, so importing this package does not import SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from daskflow.store.base import HEARTBEAT_TIMEOUT, RunStore
from daskflow.store.memory import MemoryStore
from daskflow.store.observer import StoreObserver, default_observer, open_store

if TYPE_CHECKING:
    from daskflow.store.sql import SQLStore

__all__ = [
    "HEARTBEAT_TIMEOUT",
    "MemoryStore",
    "RunStore",
    "SQLStore",
    "StoreObserver",
    "default_observer",
    "open_store",
]


def __getattr__(name: str) -> Any:
    if name == "SQLStore":
        from daskflow.store.sql import SQLStore

        return SQLStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

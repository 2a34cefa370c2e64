"""Opening the configured run store, and the observer that feeds it.

Where runs are recorded is the config key ``daskflow.store`` (env
``DASKFLOW_STORE`` wins when set):

- a file path (``~`` expanded) or a ``sqlite:///`` URL: a SQLite store;
- any other SQLAlchemy URL (``postgresql+psycopg://user@host/db``);
- ``"memory"``: one :class:`MemoryStore` for the whole process;
- ``"none"`` (or empty): record nothing.

:func:`open_store` opens a new store object for a URL each time it is called
(the caller closes it); only the memory store is shared.
:func:`default_observer` is what the engine calls at the start of each flow
run: the first time it opens the configured store and registers one
:class:`StoreObserver` on the event bus, later calls return that observer,
and when the configuration changes it replaces it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import dask.config

from daskflow.errors import ConfigurationError
from daskflow.observers.events import Event, Observer, bus

from .base import RunStore
from .memory import MemoryStore

__all__ = ["StoreObserver", "configured_url", "default_observer", "open_store"]

_NONE = ("none", "")
_memory: MemoryStore | None = None
_default: tuple[str, StoreObserver | None] | None = None
_lock = threading.Lock()


class StoreObserver(Observer):
    """Writes every batch of events to a run store, as one transaction.

    Parameters
    ----------
    store
        Where to write; closed when the observer is unregistered.

    Examples
    --------
    >>> from daskflow.observers.events import bus
    >>> observer = bus.register(StoreObserver(MemoryStore()))
    >>> bus.unregister(observer)
    """

    def __init__(self, store: RunStore) -> None:
        self.store = store

    def __repr__(self) -> str:
        return f"StoreObserver({self.store!r})"

    def on_events(self, events: Sequence[Event], **kwargs: Any) -> None:
        """Write the batch (called on the bus's dispatcher thread)."""
        self.store.write(events)

    def close(self, **kwargs: Any) -> None:
        """Close the store."""
        self.store.close()


def configured_url() -> str:
    """The configured store: env ``DASKFLOW_STORE`` if set, else ``daskflow.store``."""
    url = os.environ.get("DASKFLOW_STORE")
    if url is None:
        url = dask.config.get("daskflow.store", default="none")
    return str(url if url is not None else "none").strip()


def open_store(url: str | None = None) -> RunStore:
    """Open a run store.

    Parameters
    ----------
    url
        A SQLite file path, a SQLAlchemy URL, or ``"memory"``; None: the
        configured store (:func:`configured_url`).

    Returns
    -------
    RunStore
        A new :class:`~daskflow.store.sql.SQLStore` (close it when done), or
        the process-wide :class:`MemoryStore`.

    Raises
    ------
    ConfigurationError
        The store is ``"none"``: there is nothing to read or write.
    StoreError
        The database is not a daskflow store, is corrupt, or is newer.

    Examples
    --------
    >>> open_store("memory") is open_store("memory")
    True
    >>> store = open_store("~/.daskflow/daskflow.db")  # doctest: +SKIP
    """
    global _memory
    target = configured_url() if url is None else url.strip()
    if target.lower() in _NONE:
        raise ConfigurationError(
            "daskflow.store",
            target,
            "a SQLite path, a SQLAlchemy URL or 'memory' (with 'none' nothing is recorded)",
        )
    if target.lower() == "memory":
        with _lock:
            if _memory is None:
                _memory = MemoryStore()
            return _memory
    from .sql import SQLStore  # SQLAlchemy is imported only for a SQL store

    return SQLStore(target)


def default_observer() -> StoreObserver | None:
    """The observer recording runs in the configured store; None when it is "none".

    Registers it on :data:`daskflow.observers.events.bus` the first time, and
    again (unregistering the old one) when the configured store changed.

    Raises
    ------
    StoreError
        The configured database cannot be used; no run is recorded in it.
    """
    global _default
    target = configured_url()
    with _lock:
        if _default is not None and _default[0] == target:
            return _default[1]
    # open outside the lock: opening a SQL store may wait on another process
    store = None if target.lower() in _NONE else open_store(target)
    with _lock:
        if _default is not None and _default[0] == target:  # another thread won
            if store is not None and store is not _memory:
                store.close()
            return _default[1]
        old = _default[1] if _default is not None else None
        observer = StoreObserver(store) if store is not None else None
        _default = (target, observer)
    if old is not None:
        bus.unregister(old)
    if observer is not None:
        bus.register(observer)
    return observer

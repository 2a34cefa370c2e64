"""Opening the configured run store, and the observer that feeds it.

Where runs are recorded is the config key ``daskflow.store`` (env
``DASKFLOW_STORE`` sets it, below ``dask.config.set``; see :mod:`daskflow.config`):

- a file path (``~`` expanded) or a ``sqlite:///`` URL: a SQLite store;
- any other SQLAlchemy URL (``postgresql+psycopg://user@host/db``);
- ``"memory"``: one :class:`MemoryStore` for the whole process;
- ``"none"`` (or empty): record nothing.

:func:`open_store` opens a new store object for a URL each time it is called
(the caller closes it); only the memory store is shared.
:func:`default_observer` is what the engine calls at the start of each flow
run: the first time it opens the configured store and registers one
:class:`StoreObserver` on the event bus, later calls return that observer,
and when the configuration changes it replaces it. An observer is on the
bus before any thread can get it, so no flow run's first events miss it.
:func:`open_in_background` starts that first opening (importing SQLAlchemy,
reading the schema, replaying journals) on a helper thread, so a flow run
starts its cluster meanwhile; :func:`default_observer` waits for it.

No run is lost silently: a batch the store refuses is tried again with
backoff for ``daskflow.store-retry`` (10 s), then appended to the journal
(:mod:`daskflow.store.journal`) and replayed when the store takes writes
again; the user is told once, naming the journal. What neither the store nor
the journal took is reported as lost (:meth:`StoreObserver.outcome`), and
``daskflow run`` exits 1 for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any, Literal

import dask.config

from daskflow.errors import ConfigurationError
from daskflow.observers.events import Event, FlowRunCreated, Observer, StateChanged, bus

from .base import RunStore, error_reason
from .journal import Journal
from .memory import MemoryStore

__all__ = [
    "StoreObserver",
    "configured_url",
    "default_observer",
    "open_in_background",
    "open_store",
]

logger = logging.getLogger("daskflow.store")

_NONE = ("none", "")
#: Seconds between two tries to replay the journal while the store refuses writes, at most.
_REPLAY_BACKOFF_MAX = 30.0
_memory: MemoryStore | None = None
_default: tuple[str, StoreObserver | None] | None = None
_opening: threading.Thread | None = None  # open_in_background's helper thread
_lock = threading.Lock()


class StoreObserver(Observer):
    """Writes every batch of events to a run store, as one transaction.

    A batch the store refuses is tried again with backoff for
    ``retry_for`` seconds; then it goes to this process's journal, as do the
    batches after it (their order is kept) until the journal could be
    replayed into the store. Called on the bus's one dispatcher thread.

    Parameters
    ----------
    store
        Where to write; closed when the observer is unregistered.
    retry_for
        Seconds to keep trying a refused batch; None: ``daskflow.store-retry``.
    journal_folder
        Where to journal; None: ``daskflow.journal``.

    Examples
    --------
    >>> from daskflow.observers.events import bus
    >>> observer = bus.register(StoreObserver(MemoryStore()))
    >>> bus.unregister(observer)
    """

    def __init__(
        self,
        store: RunStore,
        *,
        retry_for: float | None = None,
        journal_folder: str | None = None,
    ) -> None:
        from daskflow import config

        self.store = store
        self.retry_for = config.get_seconds("store-retry") if retry_for is None else retry_for
        self.journal = Journal(store.url, getattr(store, "where", store.url), journal_folder)
        self._journaled: set[str] = set()  # flow runs with a batch in the journal now
        self._lost: set[str] = set()  # flow runs with a batch neither store nor journal took
        self._told: set[str] = set()  # what the user was told about (once each)
        self._live: dict[str, FlowRunCreated] = {}  # flow runs created and not ended
        self._carried: set[str] = set()  # flow runs whose creation is in the journal now
        self._next_replay = 0.0
        self._backoff = 0.5

    def __repr__(self) -> str:
        return f"StoreObserver({self.store!r})"

    def on_events(self, events: Sequence[Event], **kwargs: Any) -> None:
        """Write the batch, or journal it (called on the bus's dispatcher thread)."""
        try:
            if not self.journal.empty and not self._replay():
                self._keep(events, None)  # after what is journaled already, in order
                return
            try:
                self._write(events)
            except Exception as exc:
                self._keep(events, exc)
        finally:
            self._follow(events)

    def _follow(self, events: Sequence[Event]) -> None:
        """Keep the creation of each flow run until it ends (see :meth:`_keep`)."""
        live = self._live
        for event in events:
            if isinstance(event, FlowRunCreated):
                live[event.flow_run_id] = event
            elif (
                isinstance(event, StateChanged)
                and event.task_run_id is None
                and event.state.type.is_final
            ):
                live.pop(event.flow_run_id, None)

    def outcome(self, flow_run_id: str) -> Literal["recorded", "journaled", "lost"]:
        """What became of a flow run's events, once the bus delivered them.

        ``"journaled"``: some wait in the journal (:attr:`journal`) for the
        store; ``"lost"``: some could be written neither to the store nor to
        the journal.
        """
        if flow_run_id in self._lost:
            return "lost"
        if flow_run_id in self._journaled:
            return "journaled"
        return "recorded"

    def _write(self, events: Sequence[Event]) -> None:
        deadline = time.monotonic() + self.retry_for
        delay = 0.05
        while True:
            try:
                self.store.write(events)
                return
            except Exception as exc:
                if time.monotonic() + delay > deadline:
                    raise
                logger.debug("daskflow: writing to %r failed (%s); retrying", self.store, exc)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _replay(self) -> bool:
        """Try to empty the journal into the store; True when it is empty."""
        now = time.monotonic()
        if now < self._next_replay:
            return False
        try:
            count = self.journal.replay_into(self.store)
        except Exception as exc:
            self._next_replay = now + self._backoff
            self._backoff = min(self._backoff * 2, _REPLAY_BACKOFF_MAX)
            logger.debug("daskflow: the store %r still refuses writes (%s)", self.store, exc)
            return False
        self._journaled.clear()
        self._carried.clear()
        self._told.discard("journal")
        self._backoff = 0.5
        logger.warning(
            "daskflow: the run store %s takes writes again: %d journaled batch(es) written",
            _where(self.store),
            count,
        )
        return True

    def _keep(self, events: Sequence[Event], error: Exception | None) -> None:
        """Journal a batch the store did not take; report it lost if that fails too."""
        # artifacts created outside any run have no flow run
        runs = {event.flow_run_id for event in events if event.flow_run_id is not None}
        reason = error_reason(error) if error is not None else "journaling"
        # a flow run's creation goes to the journal with its first journaled batch: the
        # journal alone then recreates it, even in a copy of the store from before it
        created = {e.flow_run_id for e in events if type(e) is FlowRunCreated}
        carried = [
            self._live[run_id] for run_id in runs - created - self._carried if run_id in self._live
        ]
        try:
            path = self.journal.append([*carried, *events])
        except OSError as exc:
            self._lost.update(runs)
            if "lost" not in self._told:
                self._told.add("lost")
                logger.error(
                    "daskflow: run records LOST: the run store %s refused a batch (%s) and "
                    "the journal in %s could not be written either (%s)",
                    _where(self.store),
                    reason,
                    self.journal.folder,
                    exc,
                )
            return
        self._journaled.update(runs)
        self._carried.update(runs)
        if self._next_replay == 0.0 or error is not None:
            self._next_replay = time.monotonic() + self._backoff
        if "journal" not in self._told:
            self._told.add("journal")
            logger.warning(
                "daskflow: the run store %s cannot be written (%s); run records are kept in "
                "the journal %s and written into the store when it takes writes again "
                "(or when a daskflow process next opens it)",
                _where(self.store),
                reason,
                path,
            )

    def close(self, **kwargs: Any) -> None:
        """Close the store and release the journal (its batches wait for the next opener)."""
        self.journal.close()
        self.store.close()


def _where(store: Any) -> str:
    return str(getattr(store, "where", store.url))


def configured_url() -> str:
    """The configured store: ``daskflow.store`` (env ``DASKFLOW_STORE`` sets it)."""
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
    opening = _opening
    if opening is not None and opening is not threading.current_thread():
        opening.join()  # it may have opened this store: then it is taken below
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
        if observer is not None:  # on the bus before any other thread can see it
            bus.register(observer)
        _default = (target, observer)
    if old is not None:
        bus.unregister(old)
    return observer


def open_in_background() -> None:
    """Start opening the configured store on a helper thread, if it is not open.

    The flow's own :func:`default_observer` call then waits for it, and
    raises what opening raises: the helper only moves the work (importing
    SQLAlchemy, reading the schema, replaying journals) to a time when the
    flow's thread waits for something else, such as its cluster starting.
    """
    global _opening
    target = configured_url()
    if target.lower() in _NONE:
        return
    with _lock:
        if _default is not None and _default[0] == target:
            return
        if _opening is not None and _opening.is_alive():
            return
        _opening = threading.Thread(target=_open_default, name="daskflow-store-open", daemon=True)
        _opening.start()  # under the lock: no thread may join it before it started


def _open_default() -> None:
    try:
        default_observer()
    except Exception as exc:  # the flow's own default_observer() call raises it again
        logger.debug("daskflow: opening the run store in the background failed (%s)", exc)

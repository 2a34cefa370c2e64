"""The journal: event batches the run store could not take, kept until it can.

A batch that a store write refused even after retries (a locked, read-only or
corrupt SQLite file, a full disk, a database that went down) is appended to a
journal file instead of being dropped. The design:

- **Where.** One folder, config ``daskflow.journal`` (default
  ``~/.daskflow/journal``, owner-only). Each process journaling for a store
  writes its own file, named ``<store key>-<pid>-<random>.jsonl``: the store
  key (a hash of the store's URL) tells which store a file belongs to without
  opening it.
- **What.** JSON lines: a header naming the store (never its password), then
  one line per batch: ``{"id": ..., "events": [...]}``. Events are written as
  the store would record them (:func:`encode`): a state's exception object
  and a run's Dask key, which no store keeps, are left out. Each line is
  ``fsync``'d before the write returns: a batch the user was told is in the
  journal survives the process and the machine.
- **Who replays.** The file's owner holds an exclusive ``flock`` on it while
  it lives. Whoever opens the store (:func:`replay`: every SQL store does on
  open, and the owner when the store takes writes again) replays the files
  nobody holds, oldest first, batch by batch, then deletes them.
- **Idempotent.** Each batch carries an id, and the store records the ids it
  replayed in the same transaction as the batch (``write(..., replay_id=)``):
  replaying a file twice, or two processes replaying it at once, writes each
  batch once.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import fields
from typing import Any, Protocol

from daskflow.observers.events import (
    ArtifactCreated,
    ArtifactUpdated,
    Event,
    FlowRunCreated,
    LogEmitted,
    ResourcesSampled,
    StateChanged,
    TaskEdgesAdded,
    TaskRunCreated,
)
from daskflow.owner_only import private_folder
from daskflow.states import State, StateType

from .fold import jsonable

__all__ = ["Journal", "decode", "encode", "journal_folder", "replay", "store_key"]

logger = logging.getLogger("daskflow.store")

_FORMAT = 1


class _Replayable(Protocol):
    url: str

    def write(self, events: Sequence[Event], *, replay_id: str | None = None) -> None: ...


def journal_folder() -> str:
    """The configured journal folder (``daskflow.journal``), ``~`` expanded."""
    from daskflow import config

    return os.path.abspath(os.path.expanduser(str(config.get("journal") or "~/.daskflow/journal")))


def store_key(url: str) -> str:
    """A short, stable name for a store's URL (the prefix of its journal files)."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


#: How each kind of event is named in a journal line.
_KINDS: dict[type, str] = {
    StateChanged: "state",
    TaskRunCreated: "task",
    FlowRunCreated: "flow",
    LogEmitted: "log",
    ArtifactCreated: "artifact",
    ArtifactUpdated: "artifact-update",
    TaskEdgesAdded: "edges",
    ResourcesSampled: "resources",
}


def encode(event: Event) -> dict[str, Any]:
    """One event as JSON-ready data, as much of it as a store records.

    Its fields as they are, but for what JSON cannot hold: a state becomes
    its type, time and texts (not its exception object), tags a sorted list,
    parameters and details :func:`~daskflow.store.fold.jsonable`, and a task
    run's Dask key, which no store keeps, is left out.
    """
    kind = _KINDS.get(type(event))
    if kind is None:
        raise TypeError(f"not a run event: {event!r}")
    data: dict[str, Any] = {f.name: getattr(event, f.name) for f in fields(event)}
    data["kind"] = kind
    if isinstance(event, StateChanged):
        s = event.state
        texts = [s.message, s.error_type, s.error_message, s.traceback]
        data["state"] = [s.type.value, s.timestamp, *texts]
        data["details"] = jsonable(event.details)
    elif isinstance(event, TaskRunCreated):
        data["tags"] = sorted(event.tags)
        del data["key"]
    elif isinstance(event, FlowRunCreated):
        data["parameters"] = jsonable(event.parameters)
    return data


def decode(data: dict[str, Any]) -> Event:
    """The event :func:`encode` wrote."""
    fields = {k: v for k, v in data.items() if k != "kind"}
    kind = data["kind"]
    if kind == "state":
        type_value, timestamp, message, error_type, error_message, traceback = fields["state"]
        fields["state"] = State(
            StateType(type_value), timestamp, message, error_type, error_message, traceback
        )
        return StateChanged(**fields)
    if kind == "task":
        return TaskRunCreated(**{**fields, "tags": frozenset(fields["tags"]), "key": None})
    if kind == "flow":
        return FlowRunCreated(**fields)
    if kind == "log":
        return LogEmitted(**fields)
    if kind == "artifact":
        return ArtifactCreated(**fields)
    if kind == "artifact-update":
        return ArtifactUpdated(**fields)
    if kind == "edges":  # JSON made the pairs lists
        edges, run_edges = (tuple(map(tuple, fields[k])) for k in ("edges", "run_edges"))
        return TaskEdgesAdded(fields["flow_run_id"], edges, run_edges)
    if kind == "resources":
        workers = tuple((w, cpu, memory) for w, cpu, memory in fields["workers"])
        return ResourcesSampled(fields["flow_run_id"], fields["timestamp"], workers)
    raise ValueError(f"unknown journal entry kind {kind!r}")


class Journal:
    """This process's journal file for one store, created on the first append.

    Parameters
    ----------
    url
        The store's URL (its hash names the file).
    where
        What to call the store in the file's header (no password).
    folder
        The journal folder; None: :func:`journal_folder`.
    """

    def __init__(self, url: str, where: str, folder: str | None = None) -> None:
        self.url = url
        self.where = where
        self.folder = folder or journal_folder()
        self.path: str | None = None
        self._fd: int | None = None

    def __repr__(self) -> str:
        return f"Journal({self.path or self.folder!r})"

    @property
    def empty(self) -> bool:
        """True when this process journaled nothing for the store (since the last replay)."""
        return self._fd is None

    def append(self, events: Sequence[Event]) -> str:
        """Append one batch and ``fsync`` it; returns the file's path.

        Raises
        ------
        OSError
            The journal could not be written (the batch is not kept).
        """
        line = json.dumps(
            {"id": uuid.uuid4().hex, "events": [encode(e) for e in events]},
            separators=(",", ":"),
        )
        if self._fd is None:
            self._open()
        assert self._fd is not None
        assert self.path is not None
        _write_all(self._fd, (line + "\n").encode())
        os.fsync(self._fd)
        return self.path

    def _open(self) -> None:
        private_folder(self.folder)
        name = f"{store_key(self.url)}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        path = os.path.join(self.folder, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # ours while we live: nobody else replays it
            header = {"daskflow_journal": _FORMAT, "store": self.where, "created": time.time()}
            _write_all(fd, (json.dumps(header) + "\n").encode())
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise
        self._fd, self.path = fd, path

    def replay_into(self, store: _Replayable) -> int:
        """Write this process's journaled batches into ``store``, then forget them.

        Returns the number of batches written. Raises what the store raises:
        the journal is kept as it was.
        """
        if self._fd is None or self.path is None:
            return 0
        count = _replay_file(self.path, store)
        os.unlink(self.path)
        os.close(self._fd)
        self._fd, self.path = None, None
        return count

    def close(self) -> None:
        """Release the file (its batches wait for the next process that opens the store)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def replay(store: _Replayable, folder: str | None = None) -> int:
    """Replay every journal file of ``store`` that no live process holds.

    Called when a store is opened. A file is deleted once all its batches
    are in the store; a file that cannot be replayed now (the store refuses
    the write) is kept, and a warning names it.

    Returns
    -------
    int
        The number of batches written (batches replayed before are skipped
        and not counted).
    """
    folder = folder or journal_folder()
    pattern = os.path.join(glob.escape(folder), f"{store_key(store.url)}-*.jsonl")
    paths = sorted(glob.glob(pattern), key=_mtime)
    total = 0
    for path in paths:
        with _claimed(path) as fd:
            if fd is None:
                continue  # a live process journals into it, or it is gone
            try:
                total += _replay_file(path, store)
            except Exception as exc:
                logger.warning(
                    "daskflow: the journal %s could not be replayed into the run store yet "
                    "(%s); it is kept",
                    path,
                    exc,
                )
                return total
            os.unlink(path)
    if total:
        logger.info("daskflow: replayed %d journaled batch(es) into the run store", total)
    return total


def _replay_file(path: str, store: _Replayable) -> int:
    written = 0
    for batch_id, events in _batches(path):
        store.write(events, replay_id=batch_id)
        written += 1
    return written


def _batches(path: str) -> Iterator[tuple[str, list[Event]]]:
    with open(path, encoding="utf-8") as file:
        lines = file.read().split("\n")
    for line in lines[1:]:  # the header first
        if not line:
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:  # the last line of a process killed mid-write
            logger.warning("daskflow: skipped a torn line at the end of journal %s", path)
            continue
        yield entry["id"], [decode(e) for e in entry["events"]]


@contextlib.contextmanager
def _claimed(path: str) -> Iterator[int | None]:
    """The file's descriptor, locked for us; None if another process holds it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        yield None
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        yield fd if os.path.exists(path) else None  # replayed and deleted meanwhile
    finally:
        os.close(fd)


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]

"""Batched task runs: many runs of one ``.map`` in one Dask task, each still tracked.

Design note
-----------
A Dask task costs the scheduler about a millisecond or more; a trivial task
run costs daskflow well under a tenth of that. So the elements of a map whose
work is short are grouped into *chunks*: one Dask task per chunk,

``Task(chunk_key, run_chunk, pack((specs, picks)), drop, *refs)``

where ``refs`` is the deduplicated union of the elements' upstream Dask keys
(futures of earlier batches, ``TaskRef`` of this one) and ``picks[i]`` says,
for each upstream value of element ``i``, which ref holds it and at which
position of that ref's chunk (``None``: the ref's whole value). On the
worker, :func:`run_chunk` calls :func:`~daskflow.engine.attempt.run_task` for
each element in order — retries, timeout, caching, hooks, events and logs per
element, exactly as for a run of its own — and returns the list of their
results (a value or a ``TaskFailure`` each). One element failing is one
``TaskFailure`` in the list: its neighbours are untouched, and downstream
element ``i`` reads ``chunk_result[pos]`` on the worker, sees the failure and
ends ``UPSTREAM_FAILED`` as usual. Specs and picks travel as one pickle
(:func:`pack`), which the scheduler holds as bytes, not objects.

Next to each chunk a tiny *status* task (:func:`statuses_of`) keeps, per
element, ``None`` or its ``TaskFailure``: the client learns which elements
failed, with their exceptions, without moving any value.

On the client each element's ``TaskRun.future`` is an :class:`ElementFuture`
over ``(chunk, position)``: the few things the engine asks of a Dask future
(``done``, ``status``, ``type``, ``result``, ``exception``,
``add_done_callback``, ``cancel``). Many values are gathered with one gather
per chunk (:func:`gather_elements`).

Chunk size (:func:`chunk_size`): ``@task(batch=...)`` (True, False or a
size), else config ``daskflow.batch.size`` (``auto``, a size, or false);
``daskflow.batch.force`` (env ``DASKFLOW__BATCH__FORCE=on|off``) overrides
the config for every map (``off`` the task option too; ``on`` batches every
map of two or more elements whose task does not say ``batch=False``).
*auto* makes about four chunks per worker thread, and no chunk longer
than ``daskflow.batch.target-duration`` by the task's typical duration
(:data:`durations`: recorded in the run store by the flow's last completed
run, then measured as this process runs it); while a task's durations are unknown,
only maps at least :data:`UNKNOWN_MIN_WIDTH` elements per thread wide are
batched. A map chained element-wise on a batched map takes its upstream's
chunk size, so chunk ``j`` depends only on chunk ``j``.
"""

from __future__ import annotations

import logging
import math
import operator
import pickle
import threading
from collections.abc import Callable, Sequence
from typing import Any

from daskflow import config
from daskflow.engine.aio import run_side_by_side
from daskflow.engine.attempt import TaskFailure, length_of, run_task
from daskflow.engine.by_value import unpack_apart

__all__ = [
    "Chunk",
    "ElementFuture",
    "batch_forced",
    "chunk_size",
    "durations",
    "gather_elements",
    "length_at",
    "pack",
    "run_apart",
    "run_chunk",
    "run_packed",
    "run_picked",
    "run_picked_apart",
    "statuses_of",
]

logger = logging.getLogger("daskflow.engine")

#: ``(ref index, position in that ref's chunk, or None for its whole value)``
Pick = tuple[int, int | None]


# -- on the worker ---------------------------------------------------------------------
#: The ref index of a pick that reads an earlier element of the same chunk (a fused chain).
SELF = -1


def _values(picks: Sequence[Pick], refs: Sequence[Any], own: Sequence[Any] = ()) -> list[Any]:
    """The upstream values ``picks`` name; ``own``: this chunk's results so far (``SELF``)."""
    return [refs[r] if pos is None else own[pos] if r == SELF else refs[r][pos] for r, pos in picks]


def pack(obj: Any, by_value: bool = False) -> bytes:
    """Specs (and picks) as one pickle, opaque to the scheduler.

    The scheduler unpickles every task's arguments into objects, keeps them
    while the task lives, pickles them again to send the task to a worker,
    and keeps its last messages to each worker for debugging
    (``distributed.admin.low-level-log-length``). One ``bytes`` per task
    costs it a copy instead. Pickled as Dask pickles a graph: by reference
    where the worker can import the code, by value (cloudpickle) where it
    cannot (``__main__``, notebooks). ``by_value``: the caller knows it is
    the latter (a task defined in ``__main__``), so the by-reference attempt
    is skipped.
    """
    if by_value:
        import cloudpickle

        return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    from distributed.protocol.pickle import dumps

    return dumps(obj)


def run_packed(packed: bytes, *upstream: Any) -> Any:
    """One task run (not batched) whose spec travels packed (:func:`pack`)."""
    return run_task(pickle.loads(packed), *upstream)


def run_chunk(packed: bytes, drop: Sequence[int], *refs: Any) -> list[Any]:
    """Run the elements of one chunk in order; their results (values or ``TaskFailure``).

    Parameters
    ----------
    packed
        :func:`pack` of ``(specs, picks)``: one ``CallSpec`` per element and, per element, where
        each of its upstream values is among ``refs``: ``(i, None)`` the
        whole ``refs[i]``, ``(i, pos)`` element ``pos`` of that chunk's list,
        ``(SELF, pos)`` the result of element ``pos`` of this chunk.
    drop
        Elements whose value nobody outside the chunk can read (inner steps
        of a fused chain): each is let go once the next element ran, and
        its place in the result holds None (a failure stays).
    *refs
        The chunk's upstream values: whole values or other chunks' lists.
    """
    specs, picks = pickle.loads(packed)
    if _side_by_side(specs, picks):  # their waits overlap (see daskflow.engine.aio)
        calls = [(spec, *_values(pick, refs)) for spec, pick in zip(specs, picks, strict=True)]
        specs.clear()
        return run_side_by_side(run_task, calls)
    results: list[Any] = []
    dropped = set(drop)
    for i, (spec, pick) in enumerate(zip(specs, picks, strict=True)):
        values = _values(pick, refs, results)
        specs[i] = None  # let each call's arguments go once it ran
        results.append(run_task(spec, *values))
        del values, spec
        if i - 1 in dropped and type(results[i - 1]) is not TaskFailure:
            results[i - 1] = None
    return results


def _side_by_side(specs: Sequence[Any], picks: Sequence[Sequence[Pick]]) -> bool:
    """Whether a chunk's elements are async task runs that need none of each other."""
    return (
        len(specs) > 1
        and all(spec.task.is_async for spec in specs)
        and not any(r == SELF for pick in picks for r, _ in pick)
    )


def run_picked(packed: bytes, picks: Sequence[Pick], *refs: Any) -> Any:
    """One task run (not batched) whose upstream values include elements of chunks."""
    return run_task(pickle.loads(packed), *_values(picks, refs))


def run_apart(packed: bytes, pickled_task: bytes, *upstream: Any) -> Any:
    """:func:`run_packed` for a run whose task travels apart (:mod:`.by_value`)."""
    return run_task(unpack_apart(packed, pickled_task), *upstream)


def run_picked_apart(packed: bytes, pickled_task: bytes, picks: Sequence[Pick], *refs: Any) -> Any:
    """:func:`run_picked` for a run whose task travels apart (:mod:`.by_value`)."""
    return run_task(unpack_apart(packed, pickled_task), *_values(picks, refs))


def statuses_of(results: Sequence[Any]) -> list[TaskFailure | None]:
    """Per element of a chunk: its ``TaskFailure``, or None when it has a value."""
    return [r if type(r) is TaskFailure else None for r in results]


def length_at(results: Sequence[Any], position: int) -> int:
    """``len`` of one element's value (for a dynamic map over it)."""
    return length_of(results[position])


# -- on the client -------------------------------------------------------------------
#: A chunk whose values take at most this many bytes (as Dask measured them) is
#: fetched whole when an element's value is read on the client.
WHOLE_CHUNK_BYTES = 4 * 2**20


class Chunk:
    """The client's handle of one chunk: its future and its statuses' future.

    Reading the elements one by one (``[f.result() for f in t.map(xs)]``)
    fetches the chunk's whole list once and keeps it here (:meth:`values`):
    one round trip per chunk, not one Dask task and round trip per element.
    That is when the list is ``small`` (it holds one value only: a fused
    chain's last step) or takes at most :data:`WHOLE_CHUNK_BYTES`; a bigger
    one stays on the cluster and each element is asked for alone.
    """

    __slots__ = ("_lock", "_statuses", "_values", "future", "size", "small", "status_future")

    def __init__(self, future: Any, status_future: Any, size: int, small: bool = False) -> None:
        self.future = future
        self.status_future = status_future
        self.size = size
        self.small = small
        self._statuses: list[Any] | None = None
        self._values: list[Any] | bool | None = False  # False: not asked yet
        self._lock = threading.Lock()

    def values(self, timeout: float | None = None) -> list[Any] | None:
        """The chunk's list of values, fetched once; None when it is too big to keep here."""
        if self._values is False:
            with self._lock:
                if self._values is False:
                    keep = self.small or self._nbytes() <= WHOLE_CHUNK_BYTES
                    self._values = self.future.result(timeout) if keep else None
        return self._values  # type: ignore[return-value]

    def _nbytes(self) -> int:
        """The bytes of the chunk's list, as Dask measured them (one scheduler call)."""
        key = self.future.key
        return int(self.future.client.nbytes(keys=[key], summary=False).get(key, 2**63))

    def statuses(self) -> list[Any]:
        """Per element ``None`` or its ``TaskFailure`` (fetched once)."""
        if self._statuses is None:
            with self._lock:
                if self._statuses is None:
                    self._statuses = self.status_future.result()
        return self._statuses

    def has_statuses(self) -> bool:
        return self._statuses is not None

    def set_statuses(self, statuses: list[Any]) -> None:
        self._statuses = statuses


class ElementFuture:
    """What the engine reads of one element of a chunk, like a Dask future."""

    __slots__ = ("chunk", "pos")

    def __init__(self, chunk: Chunk, pos: int) -> None:
        self.chunk = chunk
        self.pos = pos

    @property
    def key(self) -> Any:
        return self.chunk.future.key

    @property
    def client(self) -> Any:
        return self.chunk.future.client

    def done(self) -> bool:
        return bool(self.chunk.status_future.done())

    @property
    def status(self) -> str:
        status = self.chunk.status_future.status
        if status == "finished":
            return "finished"
        outer = self.chunk.future.status
        return status if outer == "finished" else outer

    @property
    def type(self) -> type:
        failure = self.chunk.statuses()[self.pos]
        return TaskFailure if failure is not None else object

    def exception(self, timeout: float | None = None) -> BaseException | None:
        if self.chunk.future.status == "error":
            return self.chunk.future.exception(timeout)
        return self.chunk.status_future.exception(timeout)

    def result(self, timeout: float | None = None) -> Any:
        if self.status != "finished":
            self.chunk.status_future.result(timeout)  # raises the chunk's error
        failure = self.chunk.statuses()[self.pos]
        if failure is not None:
            return failure
        values = self.chunk.values(timeout)
        if values is not None:
            return values[self.pos]
        item = self.client.submit(operator.getitem, self.chunk.future, self.pos, pure=False)
        return item.result(timeout)

    def length(self) -> int:
        return int(self.client.submit(length_at, self.chunk.future, self.pos, pure=False).result())

    def add_done_callback(self, fn: Callable[[Any], None]) -> None:
        self.chunk.status_future.add_done_callback(lambda _: fn(self))

    def cancel(self, **kwargs: Any) -> None:
        self.chunk.future.cancel(**kwargs)

    def __repr__(self) -> str:
        return f"<ElementFuture {self.key!r}[{self.pos}]>"


def dask_futures(futures: Sequence[Any], statuses: bool = True) -> list[Any]:
    """The Dask futures behind ``futures`` (each chunk once).

    ``statuses``: a chunk's status future (done last), else its result future.
    """
    out: list[Any] = []
    seen: set[int] = set()
    for future in futures:
        if type(future) is ElementFuture:
            chunk = future.chunk
            if id(chunk) in seen:
                continue
            seen.add(id(chunk))
            out.append(chunk.status_future if statuses else chunk.future)
        else:
            out.append(future)
    return out


def prefetch_statuses(client: Any, futures: Sequence[Any]) -> None:
    """Fetch the statuses of the finished chunks among ``futures`` in one gather."""
    chunks: dict[int, Chunk] = {}
    for future in futures:
        if type(future) is ElementFuture:
            chunk = future.chunk
            if not chunk.has_statuses() and chunk.status_future.status == "finished":
                chunks[id(chunk)] = chunk
    if chunks:
        todo = list(chunks.values())
        for chunk, statuses in zip(
            todo, client.gather([c.status_future for c in todo]), strict=True
        ):
            chunk.set_statuses(statuses)


def gather_elements(client: Any, futures: Sequence[Any]) -> list[Any]:
    """The values of ``futures`` (plain and element futures): one gather for all chunks."""
    wanted = dask_futures(futures, statuses=False)
    values = dict(zip(map(id, wanted), client.gather(wanted), strict=True))
    return [
        values[id(f.chunk.future)][f.pos] if type(f) is ElementFuture else values[id(f)]
        for f in futures
    ]


# -- chunk sizes ---------------------------------------------------------------------
class Durations:
    """Typical seconds per run of each task: recorded in earlier runs, then seen here.

    A flow's first run in a process starts from what the run store recorded
    for its tasks (:meth:`seed`: the median duration of each task's runs in
    the flow's last completed run); every run that ends in this process then
    moves the figure (a moving average, :meth:`note`), so chunks of later
    maps in the same run are sized by what this run measured.
    """

    #: Task runs read from the store per flow, at most (its first ones).
    SAMPLE = 2000

    def __init__(self) -> None:
        self._seconds: dict[str, float] = {}
        self._seeded: set[tuple[str, str]] = set()
        self._unread: list[tuple[Any, str]] = []  # seeded, not read from the store yet
        self._reading = threading.Lock()

    def note(self, task_name: str, seconds: float) -> None:
        old = self._seconds.get(task_name)
        self._seconds[task_name] = seconds if old is None else 0.8 * old + 0.2 * seconds

    def typical(self, task_name: str) -> float | None:
        if self._unread:
            self._read_seeds()
        return self._seconds.get(task_name)

    def seed(self, store: Any, flow_name: str) -> None:
        """Learn the durations of ``flow_name``'s tasks from its last completed run.

        Once per store and flow name in a process: two indexed queries, made
        when a map first asks for a :meth:`typical` duration (a flow that maps
        nothing never reads them). Tasks this process has seen run keep their
        own figure. A store that cannot answer leaves the durations unknown
        (maps are then sized as they run).
        """
        mark = (store.url, flow_name)
        with self._reading:
            if mark in self._seeded:
                return
            self._seeded.add(mark)
            self._unread.append((store, flow_name))

    def _read_seeds(self) -> None:
        with self._reading:
            while self._unread:
                self._learn(*self._unread.pop(0))

    def _learn(self, store: Any, flow_name: str) -> None:
        from daskflow.states import StateType

        try:
            last = store.list_flow_runs(flow=flow_name, state=StateType.COMPLETED, limit=1)
            if not last:
                return
            rows = store.list_task_runs(last[0].id, states=[StateType.COMPLETED], limit=self.SAMPLE)
        except Exception as exc:  # durations only size chunks: never fail a run for them
            logger.debug("daskflow: no task durations from the run store (%s)", exc)
            return
        import statistics  # here: a worker running a chunk never needs it

        seen: dict[str, list[float]] = {}
        for row in rows:
            if row.start_time is not None and row.end_time is not None:
                seen.setdefault(row.task_name, []).append(row.end_time - row.start_time)
        for name, seconds in seen.items():
            if name not in self._seconds:
                self._seconds[name] = statistics.median(seconds)


durations = Durations()

#: Fewer elements a chunk than this, by the task's durations, and the map is not
#: batched: a Dask task costs a millisecond or two, which is little next to runs of
#: tens of milliseconds, while a chunk of them balances worse across workers.
MIN_SIZE = 4

#: A map of a task whose durations are not known yet is batched only when it has at
#: least this many elements per worker thread (chunks of eight or more).
UNKNOWN_MIN_WIDTH = 32


def batch_forced() -> bool | None:
    """``daskflow.batch.force``: True (batch every map), False (none) or None."""
    forced = config.get("batch.force")
    if isinstance(forced, str):
        return {"on": True, "true": True, "off": False, "false": False}.get(forced.lower())
    return None if forced is None else bool(forced)


def _mode(task: Any) -> bool | int | str:
    """False (never), a size, or "auto" for maps of ``task``."""
    option = getattr(task.options, "batch", None)
    forced = batch_forced()
    if forced is False or (forced and option is None):
        return "auto" if forced else False
    if option is None:
        option = config.get("batch.size", "auto")
    if option is True or option == "auto":
        return "auto"
    if not option or isinstance(option, str):
        return False
    return int(option)


def chunk_size(task: Any, width: int, threads: int, aligned: int | None = None) -> int:
    """Elements per chunk for ``width`` runs of ``task`` (1: no batching).

    Parameters
    ----------
    task
        The task mapped.
    width
        How many of its runs are submitted together.
    threads
        Worker threads on the cluster.
    aligned
        The chunk size of the map this one is chained on, element-wise.
    """
    mode = _mode(task)
    if mode is False or width < 2:
        return 1
    if mode != "auto":
        return max(1, int(mode))
    if aligned is not None:
        return aligned
    threads = max(1, threads)
    size = math.ceil(width / (4 * threads))
    typical = durations.typical(task.name)
    if typical is not None and typical > 0:
        target = config.get_seconds("batch.target-duration")
        size = min(size, max(1, int(target / typical)))
        if size < MIN_SIZE:  # runs this long lose more to imbalance than they save
            size = 1
    elif width < UNKNOWN_MIN_WIDTH * threads:
        size = 1  # durations unknown: only wide maps, where chunks hold 8 or more
    if batch_forced():  # every map in chunks, small ones too (testing the whole suite this way)
        size = max(2, size)
    return max(1, size)

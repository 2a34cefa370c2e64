"""Lowering one segment of a batch of task runs into one Dask graph.

Each run becomes one ``dask._task_spec.Task`` whose function is the attempt
wrapper (its call spec packed as bytes, :func:`~daskflow.engine.chunks.pack`)
and whose only dependencies are its upstream runs' keys, except the
elements of a map that are batched (:mod:`daskflow.engine.chunks`): runs of
one map group that come one after another in the segment are cut into
chunks, one Dask task each, plus one tiny status task per chunk.

A *linear chain* of single runs (each the only consumer, in the segment, of
the one before, whose user handle is gone) is fused the same way: one chunk
whose elements read earlier elements of the same chunk (picks ``(SELF, i)``)
and let their values go once read, like ``dask.optimization.fuse_linear``.
Each step is still its own tracked task run. A run whose ``TaskFuture`` the
flow still holds ends a chain: the flow may wait on it, or pass it on later,
and neither should wait for the steps after it. Chains never cross batches,
and a batch goes whenever the flow waits, so a chain never spans a step the
flow function waits on.

Where an upstream value lives is its *placement*: a ref (a future of an
earlier batch, or a ``TaskRef`` into this graph) and a position inside that
ref's chunk, or None for a whole value. A run none of whose upstream values
sits inside a chunk is lowered exactly as without batching.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from daskflow import config
from daskflow.engine.by_value import TaskPickles, pack_apart
from daskflow.engine.chunks import (
    SELF,
    Chunk,
    ElementFuture,
    batch_forced,
    chunk_size,
    pack,
    run_apart,
    run_chunk,
    run_packed,
    run_picked,
    run_picked_apart,
    statuses_of,
)
from daskflow.engine.runs import TaskRun
from daskflow.engine.scatter import data_refs

__all__ = ["Lowering"]

Placement = tuple[Any, int | None]


def _ref_key(ref: Any) -> Any:
    return ref.key


class Lowering:
    """Builds the graph of one segment; then hands out the futures it got.

    Parameters
    ----------
    threads
        Worker threads on the cluster (for chunk sizes).
    fail_upstream
        Called with a run whose upstream failed locally (never submitted).
    """

    def __init__(self, threads: int, fail_upstream: Callable[[TaskRun], None]) -> None:
        from dask._task_spec import Task, TaskRef

        self._Task, self._TaskRef = Task, TaskRef
        self.threads = threads
        self.fail_upstream = fail_upstream
        self.graph: dict[Any, Any] = {}
        self.keys: list[Any] = []
        # what each output key stands for: a run, or the elements of a chunk
        self._outputs: list[tuple[str, Any]] = []
        self._placed: dict[int, Placement] = {}
        self._chunk_sizes: dict[Any, int] = {}  # chunk key -> elements, in this graph
        self._task_pickles = TaskPickles()  # tasks sent by value, pickled once each

    # -- building --------------------------------------------------------------------
    def add(self, runs: Sequence[TaskRun], scattered: dict[int, Any]) -> None:
        """Lower ``runs`` (in order; map elements are chunked, linear chains fused)."""
        chains = _chains(runs) if _fusing() else {}
        i = 0
        n = len(runs)
        while i < n:
            run = runs[i]
            group = _group_of(run)
            j = i + 1
            if group is not None:
                while j < n and _group_of(runs[j]) == group:
                    j += 1
            if j - i > 1:
                self._add_group(runs[i:j], scattered)
            elif run.local_state is None:
                chain = chains.get(id(run))
                if chain is None:
                    self._add_run(run, scattered)
                elif chain[-1] is run:  # its steps' inputs are all placed by now
                    self._add_chain(chain, scattered)
            i = j

    def _placement(self, up: TaskRun) -> Placement | None:
        placed = self._placed.get(id(up))
        if placed is not None:
            return placed
        future = up.future
        if up.local_state is not None and future is None:
            return None
        if type(future) is ElementFuture:
            return (future.chunk.future, future.pos)
        if future is not None:
            return (future, None)
        return (self._TaskRef(up.key), None)

    def _picks(
        self,
        run: TaskRun,
        refs: list[Any],
        index: dict[Any, int],
        scattered: dict[int, Any],
        inside: dict[int, int] | None = None,
    ) -> list[tuple[int, int | None]] | None:
        """Where each upstream value of ``run`` is among ``refs`` (extended); None: one failed.

        ``inside``: positions of the runs already in the chunk being built.
        """
        picks: list[tuple[int, int | None]] = []
        places: list[Placement | tuple[int, int]] = []
        for up in run.upstream:
            at = inside.get(id(up)) if inside else None
            if at is not None:
                places.append((SELF, at))
                continue
            placed = self._placement(up)
            if placed is None:
                return None
            places.append(placed)
        spec = run.spec
        if spec is not None and spec.data:
            places.extend((ref, None) for ref in data_refs(spec.data, scattered))
        for ref, pos in places:
            if ref is SELF:
                picks.append((SELF, pos))
                continue
            key = _ref_key(ref)
            at = index.get(key)
            if at is None:
                at = index[key] = len(refs)
                refs.append(ref)
            picks.append((at, pos))
        return picks

    def _add_run(self, run: TaskRun, scattered: dict[int, Any]) -> None:
        refs: list[Any] = []
        picks = self._picks(run, refs, {}, scattered)
        if picks is None:
            self.fail_upstream(run)
            return
        # its large arguments (data) never travel in it: CallSpec.__reduce__
        spec = run.spec
        assert spec is not None
        whole = all(pos is None for _, pos in picks)
        args = [refs[r] for r, _ in picks] if whole else [picks, *refs]
        if _in_main(run):  # its task by value, once per graph (see engine.by_value)
            pickled = self._task_pickles.of(run.task)
            run_fn = run_apart if whole else run_picked_apart
            task = self._Task(run.key, run_fn, pack_apart(spec), pickled, *args)
        else:
            task = self._Task(run.key, run_packed if whole else run_picked, pack(spec), *args)
        self.graph[run.key] = task
        self.keys.append(run.key)
        self._outputs.append(("run", run))
        self._placed[id(run)] = (self._TaskRef(run.key), None)

    def _add_group(self, runs: Sequence[TaskRun], scattered: dict[int, Any]) -> None:
        live = [r for r in runs if r.local_state is None]
        if not live:
            return
        size = chunk_size(live[0].task, len(live), self.threads, self._aligned(live[0]))
        if size <= 1:
            for run in live:
                self._add_run(run, scattered)
            return
        for start in range(0, len(live), size):
            self._add_chunk(live[start : start + size], scattered)

    def _aligned(self, first: TaskRun) -> int | None:
        """The chunk size of the batched map ``first`` is chained on, element-wise."""
        for up in first.upstream:
            placed = self._placed.get(id(up))
            if placed is not None and placed[1] == 0:
                return self._chunk_sizes.get(_ref_key(placed[0]))
            future = up.future
            if type(future) is ElementFuture and future.pos == 0:
                return future.chunk.size
        return None

    def _add_chunk(self, elements: Sequence[TaskRun], scattered: dict[int, Any]) -> None:
        """One chunk of a map's elements."""
        group, first = elements[0].key
        members = self._lower_chunk(
            elements, scattered, (f"{group}-batch", first), (f"{group}-status", first)
        )
        if members:
            self._chunk_sizes[(f"{group}-batch", first)] = len(members)

    def _add_chain(self, chain: Sequence[TaskRun], scattered: dict[int, Any]) -> None:
        """One fused linear chain (its inner steps' values are let go on the worker)."""
        head = chain[0]
        name = head.task._key_name
        self._lower_chunk(
            chain,
            scattered,
            f"{name}-chain-{head.id}",
            f"{name}-chain-status-{head.id}",
            drop=tuple(range(len(chain) - 1)),
        )

    def _lower_chunk(
        self,
        elements: Sequence[TaskRun],
        scattered: dict[int, Any],
        key: Any,
        status_key: Any,
        drop: tuple[int, ...] = (),
    ) -> list[TaskRun]:
        refs: list[Any] = []
        index: dict[Any, int] = {}
        inside: dict[int, int] = {}
        members: list[TaskRun] = []
        picks: list[list[tuple[int, int | None]]] = []
        for run in elements:
            found = self._picks(run, refs, index, scattered, inside)
            if found is None:
                self.fail_upstream(run)
                continue
            if drop:
                inside[id(run)] = len(members)
            members.append(run)
            picks.append(found)
        if not members:
            return members
        if len(members) < len(elements):  # a step failed here: keep the others' values
            drop = ()
        packed = pack(([r.spec for r in members], picks), _in_main(members[0]))
        self.graph[key] = self._Task(key, run_chunk, packed, drop, *refs)
        self.graph[status_key] = self._Task(status_key, statuses_of, self._TaskRef(key))
        self.keys += [key, status_key]
        self._outputs.append(("chain" if drop else "chunk", members))
        ref = self._TaskRef(key)
        for pos, run in enumerate(members):
            self._placed[id(run)] = (ref, pos)
        return members

    # -- after submission ------------------------------------------------------------
    def assign(self, futures: Sequence[Any]) -> None:
        """Give each run its future (``futures`` in the order of :attr:`keys`)."""
        it = iter(futures)
        for kind, what in self._outputs:
            if kind == "run":
                what.future = next(it)
                what.spec = None  # the cluster has it now; don't pin the arguments here
                continue
            chunk = Chunk(next(it), next(it), len(what), small=kind == "chain")
            for pos, run in enumerate(what):
                run.future = ElementFuture(chunk, pos)
                run.spec = None


def _in_main(run: TaskRun) -> bool:
    """The run's task is defined in ``__main__`` (a script, a notebook): sent by value."""
    return getattr(getattr(run.task, "fn", None), "__module__", None) == "__main__"


def _fusing() -> bool:
    """``daskflow.batch.fuse-chains``, unless ``daskflow.batch.force`` is off."""
    return batch_forced() is not False and bool(config.get("batch.fuse-chains", True))


def _fusable(run: TaskRun) -> bool:
    """A single run that may be a step of a fused chain."""
    spec = run.spec
    return (
        run.map_index is None
        and type(run.key) is str
        and spec is not None
        and spec.fail_with is None
        and run.deferred is None
        and run.local_state is None
        and run.task is not None
    )


def _handle_gone(run: TaskRun) -> bool:
    """True once the user's ``TaskFuture`` of ``run`` is gone (it was submitted)."""
    handle = run.handle
    return handle is not None and handle() is None


def _chains(runs: Sequence[TaskRun]) -> dict[int, list[TaskRun]]:
    """The linear chains of two or more runs in ``runs``, by ``id`` of each step."""
    consumers = Counter(id(up) for run in runs for up in run.upstream)
    chain_of: dict[int, list[TaskRun]] = {}
    for run in runs:
        if not _fusable(run):
            continue
        for up in run.upstream:
            chain = chain_of.get(id(up))
            if (
                chain is not None
                and chain[-1] is up
                and consumers[id(up)] == 1
                and _handle_gone(up)
            ):
                chain.append(run)
                chain_of[id(run)] = chain
                break
        else:
            chain_of[id(run)] = [run]
    return {key: chain for key, chain in chain_of.items() if len(chain) > 1}


def _group_of(run: TaskRun) -> Any:
    """The map group of a run that may be batched, else None."""
    key = run.key
    if run.map_index is None or type(key) is not tuple or run.spec is None or run.deferred:
        return None
    if run.spec.fail_with is not None:
        return None
    return (key[0], id(run.task))

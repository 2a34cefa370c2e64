"""Lowering one segment of a batch of task runs into one Dask graph.

Each run becomes one ``dask._task_spec.Task`` whose function is the attempt
wrapper and whose only dependencies are its upstream runs' keys, except the
elements of a map that are batched (:mod:`daskflow.engine.chunks`): runs of
one map group that come one after another in the segment are cut into
chunks, one Dask task each, plus one tiny status task per chunk.

Where an upstream value lives is its *placement*: a ref (a future of an
earlier batch, or a ``TaskRef`` into this graph) and a position inside that
ref's chunk, or None for a whole value. A run none of whose upstream values
sits inside a chunk is lowered exactly as without batching.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from daskflow.engine.attempt import run_task
from daskflow.engine.chunks import (
    Chunk,
    ElementFuture,
    chunk_size,
    run_chunk,
    run_picked,
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

    # -- building --------------------------------------------------------------------
    def add(self, runs: Sequence[TaskRun], scattered: dict[int, Any]) -> None:
        """Lower ``runs`` (in order; elements of one map group are chunked)."""
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
                self._add_run(run, scattered)
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
        self, run: TaskRun, refs: list[Any], index: dict[Any, int], scattered: dict[int, Any]
    ) -> list[tuple[int, int | None]] | None:
        """Where each upstream value of ``run`` is among ``refs`` (extended); None: one failed."""
        picks: list[tuple[int, int | None]] = []
        places: list[Placement] = []
        for up in run.upstream:
            placed = self._placement(up)
            if placed is None:
                return None
            places.append(placed)
        spec = run.spec
        if spec is not None and spec.data:
            places.extend((ref, None) for ref in data_refs(spec.data, scattered))
        for ref, pos in places:
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
        spec = run.spec  # its large arguments (data) never travel in it: CallSpec.__reduce__
        if all(pos is None for _, pos in picks):
            ordered = [refs[r] for r, _ in picks]
            task = self._Task(run.key, run_task, spec, *ordered)
        else:
            task = self._Task(run.key, run_picked, spec, picks, *refs)
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
        refs: list[Any] = []
        index: dict[Any, int] = {}
        members: list[TaskRun] = []
        picks: list[list[tuple[int, int | None]]] = []
        for run in elements:
            found = self._picks(run, refs, index, scattered)
            if found is None:
                self.fail_upstream(run)
                continue
            members.append(run)
            picks.append(found)
        if not members:
            return
        group, first = members[0].key
        key = (f"{group}-batch", first)
        status_key = (f"{group}-status", first)
        specs = [r.spec for r in members]
        self.graph[key] = self._Task(key, run_chunk, specs, picks, *refs)
        self.graph[status_key] = self._Task(status_key, statuses_of, self._TaskRef(key))
        self.keys += [key, status_key]
        self._outputs.append(("chunk", members))
        self._chunk_sizes[key] = len(members)
        ref = self._TaskRef(key)
        for pos, run in enumerate(members):
            self._placed[id(run)] = (ref, pos)

    # -- after submission ------------------------------------------------------------
    def assign(self, futures: Sequence[Any]) -> None:
        """Give each run its future (``futures`` in the order of :attr:`keys`)."""
        it = iter(futures)
        for kind, what in self._outputs:
            if kind == "run":
                what.future = next(it)
                what.spec = None  # the cluster has it now; don't pin the arguments here
                continue
            chunk = Chunk(next(it), next(it), len(what))
            for pos, run in enumerate(what):
                run.future = ElementFuture(chunk, pos)
                run.spec = None


def _group_of(run: TaskRun) -> Any:
    """The map group of a run that may be batched, else None."""
    key = run.key
    if run.map_index is None or type(key) is not tuple or run.spec is None or run.deferred:
        return None
    if run.spec.fail_with is not None:
        return None
    return (key[0], id(run.task))

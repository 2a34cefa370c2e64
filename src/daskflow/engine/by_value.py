"""Tasks sent by value: pickled once per graph, rebuilt once per worker.

A task defined where workers cannot import it (a script's ``__main__``, a
notebook) travels by value: cloudpickle pickles its function, options,
source text and code files (see ``Task.__reduce__``). Pickled inside each
run's call spec, that cost the client tens of microseconds per task run
(cloudpickle walks the function's code every time), and each worker as much
again to rebuild it.

So a run that is its own Dask task sends its spec without the task
(:func:`pack_apart`) and the task as ``bytes`` beside it: the lowering
pickles each such task once per graph (:class:`TaskPickles`) and hands the
same ``bytes`` object to every Dask task of the graph that runs it, so the
graph's one pickle holds it once. A worker rebuilds a task once
(:func:`received`) and keeps the last few it rebuilt, by their bytes: equal
bytes are the same task, with the same options.

Runs batched into a chunk need none of this: one chunk's specs are one
pickle, which holds their task once already.
"""

from __future__ import annotations

import pickle
import threading
from typing import Any

from daskflow.engine.call import CallSpec

__all__ = ["TaskPickles", "pack_apart", "received", "unpack_apart"]

#: Tasks a worker keeps rebuilt (the oldest goes first).
KEPT = 64

_received: dict[bytes, Any] = {}
_receiving = threading.Lock()


class TaskPickles:
    """The pickles of the tasks sent by value in one graph, one per task."""

    def __init__(self) -> None:
        self._pickles: dict[int, tuple[Any, bytes]] = {}

    def of(self, task: Any) -> bytes:
        """``task`` pickled by value (the same ``bytes`` object for every run of it)."""
        held = self._pickles.get(id(task))
        if held is None:
            import cloudpickle

            held = self._pickles[id(task)] = (
                task,  # kept, so its id is not reused by another task in this graph
                cloudpickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL),
            )
        return held[1]


class _WithoutTask:
    """Pickles as its spec with ``task=None``: the task travels apart."""

    __slots__ = ("spec",)

    def __init__(self, spec: CallSpec) -> None:
        self.spec = spec

    def __reduce__(self) -> tuple[Any, ...]:
        cls, values = self.spec.__reduce__()
        return (cls, (None, *values[1:]))


def pack_apart(spec: CallSpec) -> bytes:
    """``spec`` pickled without its task (as :func:`~daskflow.engine.chunks.pack` pickles).

    Its arguments still go by value where they must (values of classes
    defined in ``__main__``): distributed's ``dumps`` falls back to
    cloudpickle for those.
    """
    from distributed.protocol.pickle import dumps

    return dumps(_WithoutTask(spec))


def received(pickled: bytes) -> Any:
    """The task ``pickled`` holds, rebuilt at most once per worker while kept."""
    task = _received.get(pickled)
    if task is None:
        task = pickle.loads(pickled)
        with _receiving:
            if len(_received) >= KEPT:
                del _received[next(iter(_received))]
            _received[pickled] = task
    return task


def unpack_apart(packed: bytes, pickled_task: bytes) -> CallSpec:
    """The spec :func:`pack_apart` packed, with its task back (on the worker)."""
    spec: CallSpec = pickle.loads(packed)
    spec.task = received(pickled_task)
    return spec

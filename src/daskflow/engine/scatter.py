"""Large arguments sent to the cluster on their own, once each.

A flow that passes a 80 MB DataFrame to a task would otherwise ship it inside
the batch's graph: distributed warns "Sending large graph of size 80 MiB"
and suggests ``client.scatter``, and a loop that passes the same frame to a
task in every batch sends it again each time. The graph layer marks such
arguments (:func:`daskflow.graph.arguments.is_large`, config
``daskflow.submit.scatter-threshold``); :class:`ScatteredArguments` scatters
them before the graph goes, in one ``client.scatter`` call per batch, and the
graph refers to them by their futures, like any dependency.

An object is sent once for as long as it lives in this process and its copy
on the cluster is intact: the futures are kept by the object's id with a weak
reference to it, so a frame collected here releases its copy there, and a
copy lost with a worker is sent again next time.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Sequence
from typing import Any

__all__ = ["ScatteredArguments", "data_refs"]


class ScatteredArguments:
    """The futures of the large arguments sent to one client's cluster."""

    def __init__(self) -> None:
        # id(obj) -> (weak reference to obj, its future)
        self._sent: dict[int, tuple[weakref.ref[Any], Any]] = {}

    def futures(self, client: Any, objects: Sequence[Any]) -> dict[int, Any]:
        """``id(obj) -> future`` for each object, scattering those not on the cluster.

        Called for every batch, large arguments or not: it also lets go of the
        copies of objects collected here since. Objects that take no weak
        reference are sent each time they are asked for.
        """
        if self._sent:
            self._forget_collected()
        if not objects:
            return {}
        found: dict[int, Any] = {}
        todo: dict[int, Any] = {}
        for obj in objects:
            key = id(obj)
            if key in found or key in todo:
                continue
            kept = self._sent.get(key)
            if kept is not None and kept[0]() is obj and kept[1].status == "finished":
                found[key] = kept[1]
            else:
                todo[key] = obj
        if todo:
            values = list(todo.values())
            futures = client.scatter(values, hash=False)
            for obj, future in zip(values, futures, strict=True):
                found[id(obj)] = future
                with contextlib.suppress(TypeError):  # no weak references: not kept
                    self._sent[id(obj)] = (weakref.ref(obj), future)
        return found

    def _forget_collected(self) -> None:
        gone = [key for key, (ref, _) in self._sent.items() if ref() is None]
        for key in gone:
            del self._sent[key]


def data_refs(data: Sequence[Any], futures: dict[int, Any]) -> list[Any]:
    """The futures of a call's large arguments, in the order :class:`DataSlot` reads them.

    A :class:`~daskflow.engine.call.DataSlot` counts from the end of the
    values, so they go last first.
    """
    return [futures[id(obj)] for obj in reversed(data)]

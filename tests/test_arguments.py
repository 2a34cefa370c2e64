"""Finding futures in arguments: cheap, and never inside big objects."""

from __future__ import annotations

import pandas as pd

from daskflow import allow_failure, quote, unmapped
from daskflow.engine.call import Slot
from daskflow.engine.runs import TaskRun
from daskflow.graph.arguments import Collector, RunRef, build_call


class FakeFuture(RunRef):
    __slots__ = ("_run",)

    def __init__(self, name: str) -> None:
        self._run = TaskRun(name, name, None, name, None, None, [])


class Exploding:
    """An object that must never be looked into."""

    def __iter__(self):
        raise AssertionError("walked into an opaque object")

    def __getattr__(self, name):
        raise AssertionError(f"looked up {name}")


def test_futures_become_slots_and_upstream_edges():
    a, b = FakeFuture("a"), FakeFuture("b")
    spec, upstream = build_call(
        Collector(), None, "flow", "run", "t", None, (a, [b, 1], {"k": a}), {"x": b}
    )
    assert [r.id for r in upstream] == ["a", "b"]
    assert isinstance(spec.args[0], Slot)
    assert spec.nested == frozenset({1, 2})
    args, kwargs = spec.bind(["A", "B"])
    assert args == ("A", ["B", 1], {"k": "A"})
    assert kwargs == {"x": "B"}


def test_big_and_opaque_objects_are_not_walked():
    frame = pd.DataFrame({"x": range(10)})
    opaque = Exploding()
    spec, upstream = build_call(
        Collector(), None, "flow", "run", "t", None, (frame, opaque, quote([FakeFuture("q")])), {}
    )
    assert upstream == []
    assert spec.args[0] is frame
    assert spec.args[1] is opaque
    assert spec.nested == frozenset()


def test_allow_failure_and_unmapped_markers():
    a = FakeFuture("a")
    spec, upstream = build_call(
        Collector(), None, "flow", "run", "t", None, (allow_failure(a), unmapped(3)), {}
    )
    assert upstream == [a._run]
    assert spec.args[0].allow_failure
    assert spec.args[1] == 3
    assert a._run.handled  # passing a failure on deliberately handles it

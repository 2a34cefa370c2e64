"""Tasks sent by value: pickled once per graph, rebuilt once per worker (engine.by_value)."""

from __future__ import annotations

import pickle

import cloudpickle
import pytest

from daskflow import task
from daskflow.engine import by_value
from daskflow.engine.call import CallSpec


def _local_task(name: str = "double", offset: int = 0):  # a local function: sent by value
    def double(x: int) -> int:
        return 2 * x + offset

    return task(double, name=name, retries=2)


def _spec(t: object, x: int) -> CallSpec:
    return CallSpec(t, "f" * 32, "r" * 32, "double", None, (x,), {})


@pytest.fixture(autouse=True)
def _nothing_received(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(by_value, "_received", {})


def test_a_graph_pickles_each_task_once():
    double, other = _local_task(), _local_task("other")
    pickles = by_value.TaskPickles()

    assert pickles.of(double) is pickles.of(double)
    assert pickles.of(other) is not pickles.of(double)


def test_a_spec_travels_without_its_task_and_gets_it_back():
    double = _local_task()
    pickled = by_value.TaskPickles().of(double)

    packed = by_value.pack_apart(_spec(double, 21))
    first = by_value.unpack_apart(packed, pickled)
    # another Dask task of the graph: equal bytes, another object, the same task
    second = by_value.unpack_apart(by_value.pack_apart(_spec(double, 5)), bytes(pickled))

    assert pickle.loads(packed).task is None  # the task is not in the spec's pickle
    assert first.task is second.task
    assert (first.args, second.args) == ((21,), (5,))
    assert first.task.fn(*first.args) == 42
    assert (first.task.name, first.task.options.retries) == ("double", 2)
    assert first.task_run_id == "r" * 32


def test_a_spec_keeps_arguments_that_must_go_by_value():
    double = _local_task()
    add = lambda x: x + 1  # noqa: E731 - a lambda cannot be pickled by reference
    spec = CallSpec(double, "f" * 32, "r" * 32, "double", None, (add,), {})

    rebuilt = by_value.unpack_apart(by_value.pack_apart(spec), by_value.TaskPickles().of(double))

    assert rebuilt.args[0](1) == 2


def test_a_worker_keeps_the_last_few_tasks(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(by_value, "KEPT", 2)
    pickles = [cloudpickle.dumps(_local_task(f"t{i}", i)) for i in range(3)]

    tasks = [by_value.received(p) for p in pickles]

    assert [t.name for t in tasks] == ["t0", "t1", "t2"]
    assert list(by_value._received) == pickles[1:]  # the oldest went
    assert by_value.received(pickles[2]) is tasks[2]

"""Run-time behaviour of maps and batches, ordered with events (no sleeps).

These run on the in-process cluster: the test and the tasks share
``threading.Event`` objects, so the test can hold a task mid-run.
"""

from __future__ import annotations

import threading

import daskflow
from daskflow import flow, task
from daskflow.observers.events import bus
from daskflow.states import StateType
from tests.conftest import poll_for

started: dict[str, threading.Event] = {}
gates: dict[str, threading.Event] = {}


def _event(table: dict[str, threading.Event], name: str) -> threading.Event:
    return table.setdefault(name, threading.Event())


@task
def gated_list(name: str, n: int) -> list[int]:
    _event(started, name).set()
    _event(gates, name).wait(30)
    return list(range(n))


# element i must start on its own as upstream element i is done: not in a chunk with its
# held neighbours (batched elements run one after another in their chunk)
@task(batch=False)
def slow_when_odd(i: int) -> int:
    if i % 2:
        _event(gates, f"odd-{i}").wait(30)
    return i


@task
def double(i: int) -> int:
    return 2 * i


def test_tasks_start_while_the_flow_function_goes_on(threads_client):
    seen = {}

    @flow(cluster=threads_client)
    def f() -> int:
        future = gated_list.submit("batch", 3)
        # the flow never waits on `future` here: the batch must go by itself
        poll_for(lambda: _event(started, "batch").is_set())
        seen["started_before_wait"] = True
        _event(gates, "batch").set()
        return len(future.result())

    assert f() == 3
    assert seen == {"started_before_wait": True}


def test_dynamic_map_does_not_block_the_flow(threads_client):
    progress = []

    @flow(cluster=threads_client)
    def f() -> list[int]:
        values = gated_list.submit("dynamic", 4)
        mapped = double.map(values)  # width unknown: must return at once
        progress.append(repr(mapped))
        _event(gates, "dynamic").set()
        return mapped.result()

    assert f() == [0, 2, 4, 6]
    assert progress == ["<MappedFuture double x?>"]


def test_element_i_starts_when_upstream_element_i_is_done(threads_client):
    @flow(cluster=threads_client)
    def f() -> list[int]:
        first = slow_when_odd.map(range(4))
        second = double.with_options(batch=False).map(first)
        poll_for(lambda: second[0].state.type is StateType.COMPLETED)
        poll_for(lambda: second[2].state.type is StateType.COMPLETED)
        # the odd elements upstream are still held: their downstream waits
        assert first[1].state.type is StateType.RUNNING or not first[1].state.is_final()
        assert not second[1].state.is_final()
        for i in (1, 3):
            _event(gates, f"odd-{i}").set()
        return second.result()

    assert f() == [0, 2, 4, 6]


def test_chained_dynamic_maps_and_fan_in(threads_client):
    @flow(cluster=threads_client)
    def f() -> int:
        values = gated_list.submit("chain", 5)
        total = sum_all.submit(double.map(double.map(values)))
        _event(gates, "chain").set()
        return total.result()

    assert f() == 4 * sum(range(5))


@task
def sum_all(xs: list[int]) -> int:
    return sum(xs)


@task
def make_list(n: int) -> list[int]:
    return list(range(n))


def test_a_run_taking_a_deferred_fan_in_waits_for_it(cluster):
    # sum_all waits for the width of the map; what takes its result must not reach
    # the cluster before it (Dask cancelled it, and the map with it)
    @flow(name="deferred-chain", cluster=cluster)
    def f(n: int) -> int:
        doubled = double.map(make_list.submit(n))
        return double.submit(double.submit(sum_all.submit(doubled))).result()

    assert f(4) == 4 * 2 * sum(range(4))
    bus.flush()
    [run] = daskflow.runs(flow="deferred-chain", limit=1)
    assert {t.state.type for t in run.task_runs} == {StateType.COMPLETED}

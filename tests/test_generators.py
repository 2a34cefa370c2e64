"""Generator flows and tasks (``yield``), as Prefect 3 runs them.

Calling a generator flow gives a generator: its run starts with the first
value asked for and ends when the caller is done. A generator task's run
yields its values where it runs; its value is their list, and calling it
gives an iterator over them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import daskflow
from daskflow import flow, task
from daskflow.errors import ConfigurationError
from daskflow.observers.events import bus
from daskflow.states import StateType


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def last_run(flow_name: str) -> Any:
    bus.flush()
    [run] = daskflow.runs(flow=flow_name, limit=1)
    return run


@task
def square(x: int) -> int:
    return x * x


@task
def countdown(n: int) -> Iterator[Any]:
    while n > 0:
        yield n
        n -= 1


def test_a_generator_flow_yields_values_as_its_caller_asks(cluster: object, tmp_path: Path):
    name = unique("squares")
    log = tmp_path / "made"

    @flow(cluster=cluster, name=name)
    def squares(n: int) -> Iterator[Any]:
        for i in range(n):
            with log.open("a") as out:
                out.write(f"{i} ")
            yield square(i)

    values = squares(5)
    assert not log.exists()  # nothing runs before the first value is asked for
    assert next(values) == 0
    assert next(values) == 1
    assert log.read_text() == "0 1 "  # one value made per value asked
    assert list(values) == [4, 9, 16]
    run = last_run(name)
    assert run.state.type is StateType.COMPLETED
    assert run.parameters == {"n": 5}
    assert len(run.task_runs) == 5


def test_a_generator_flow_stopped_early_completes_with_what_it_made(cluster: object):
    name = unique("endless")

    @flow(cluster=cluster, name=name)
    def endless() -> Iterator[Any]:
        i = 0
        while True:
            yield square(i)
            i += 1

    for value in endless():
        if value >= 9:
            break
    run = last_run(name)
    assert run.state.type is StateType.COMPLETED
    assert len(run.task_runs) == 4


def test_an_error_in_a_generator_flow_fails_its_run_and_reaches_the_caller():
    name = unique("broken")

    @flow(cluster="sync", name=name)
    def broken() -> Iterator[Any]:
        yield 1
        raise KeyError("gone")

    values = broken()
    assert next(values) == 1
    with pytest.raises(KeyError, match="gone"):
        next(values)
    assert last_run(name).state.type is StateType.FAILED
    with pytest.raises(ConfigurationError, match="return_state"):
        broken(return_state=True)


def test_a_flow_that_returns_a_generator_returns_its_values_as_a_list():
    def gen() -> Iterator[Any]:
        yield from [1, 2, 3]

    @flow(cluster="sync")
    def returns_one() -> Any:
        return gen()

    assert returns_one() == [1, 2, 3]


def test_a_generator_subflow_runs_inside_its_parent(cluster: object):
    child_name = unique("child")

    @flow(cluster=cluster, name=child_name)
    def child(n: int) -> Iterator[Any]:
        yield from (square(i) for i in range(n))

    parent_name = unique("parent")

    @flow(cluster=cluster, name=parent_name)
    def parent() -> list[int]:
        return [v + 1 for v in child(3)]

    assert parent() == [1, 2, 5]
    run = last_run(child_name)
    assert run.parent_id == last_run(parent_name).id
    assert run.state.type is StateType.COMPLETED


def test_a_generator_task_gives_its_values_by_call_submit_and_map(cluster: object):
    name = unique("pipeline")

    @flow(cluster=cluster, name=name)
    def pipeline() -> tuple[list[int], list[int], list[list[int]]]:
        called = countdown(3)
        assert next(called) == 3  # an iterator, like Prefect's generator
        return [3, *called], countdown.submit(2).result(), countdown.map([1, 2]).result()

    assert pipeline() == ([3, 2, 1], [2, 1], [[1], [2, 1]])
    assert {t.state.type for t in last_run(name).task_runs} == {StateType.COMPLETED}

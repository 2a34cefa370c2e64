"""Batched task runs: elements of a map in chunks, each element still its own task run."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import dask
import pytest

import daskflow
from daskflow import flow, task, unmapped
from daskflow.api.logger import get_run_logger
from daskflow.cache import task_input_hash
from daskflow.engine.chunks import ElementFuture, chunk_size, durations
from daskflow.errors import ConfigurationError
from daskflow.observers.events import bus
from daskflow.states import StateType


@pytest.fixture(autouse=True)
def _batching_as_configured() -> Iterator[None]:
    """These tests say per task how to batch, whatever DASKFLOW__BATCH__FORCE says."""
    with dask.config.set({"daskflow.batch.force": None}):
        yield


@task(batch=4)
def inc(x: int) -> int:
    return x + 1


@task(batch=4)
def inc_or_fail(x: int) -> int:
    if x == 5:
        raise ValueError("five")
    return x + 1


@task(batch=4)
def double(x: int) -> int:
    return 2 * x


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@task(batch=3, retries=2, retry_delay_seconds=0.01)
def flaky_when_odd(folder: str, x: int) -> int:
    marker = Path(folder, str(x))
    if x % 2 and not marker.exists():
        marker.touch()
        raise RuntimeError(f"first attempt of {x}")
    return x


@task(batch=5)
def logs(x: int) -> int:
    get_run_logger().info("element %d", x)
    return x


@task(batch=4, timeout_seconds=0.5)
def sleepy(x: int) -> int:
    if x == 2:
        time.sleep(3)
    return x


@task(batch=4, cache_key_fn=task_input_hash)
def cached_square(x: int) -> int:
    return x * x


@task
def listing(n: int) -> list[int]:
    return list(range(n))


def _chunks(mapped: object) -> list[int]:
    """The size of each distinct chunk the elements of ``mapped`` ran in."""
    seen: dict[int, int] = {}
    for element in mapped:  # type: ignore[attr-defined]
        future = element._run.future
        assert isinstance(future, ElementFuture), future
        seen.setdefault(id(future.chunk), future.chunk.size)
    return list(seen.values())


def test_each_element_has_its_own_run_states_and_record(processes_client, observer):
    shapes = []

    @flow(cluster=processes_client)
    def f() -> list[int]:
        mapped = inc.map(range(10))
        values = mapped.result()
        shapes.append(_chunks(mapped))
        return values

    assert f() == list(range(1, 11))
    assert shapes == [[4, 4, 2]]
    bus.flush()
    (flow_run,) = observer.flow_runs.values()
    runs = observer.task_runs_of(flow_run.id)
    assert len({r.id for r in runs}) == 10
    assert sorted(r.map_index for r in runs) == list(range(10))  # type: ignore[type-var]
    for run in runs:
        assert run.state_types == [StateType.PENDING, StateType.RUNNING, StateType.COMPLETED]
    stored = daskflow.get_run(flow_run.id).task_runs
    assert sorted(t.name for t in stored) == sorted(f"inc-{i}" for i in range(10))
    assert {t.state.type for t in stored} == {StateType.COMPLETED}


def _getitem_tasks(dask_scheduler=None) -> int:
    prefix = dask_scheduler.task_prefixes.get("getitem")
    return 0 if prefix is None else sum(prefix.state_counts.values())


def test_reading_each_elements_value_fetches_each_chunk_once(processes_client):
    """``[f.result() for f in t.map(xs)]``: no Dask task and round trip per element."""

    @flow(cluster=processes_client)
    def each(n: int) -> list[int]:
        return [f.result() for f in double.map(range(n))]

    before = processes_client.run_on_scheduler(_getitem_tasks)
    assert each(40) == [2 * i for i in range(40)]
    assert processes_client.run_on_scheduler(_getitem_tasks) == before


def test_a_failing_element_fails_alone_and_its_downstream_is_upstream_failed(
    processes_client, observer
):
    seen = {}

    @flow(cluster=processes_client)
    def f() -> int:
        first = inc_or_fail.map(range(8))
        second = double.map(first)
        second.wait()
        seen["first"] = [s.type for s in first.states]
        seen["second"] = [s.type for s in second.states]
        seen["values"] = second.result(raise_on_failure=False)
        seen["error"] = first[5].state.exception()
        return 0

    f()
    assert (
        seen["first"] == [StateType.COMPLETED] * 5 + [StateType.FAILED] + [StateType.COMPLETED] * 2
    )
    assert seen["second"][5] is StateType.UPSTREAM_FAILED
    assert [s for i, s in enumerate(seen["second"]) if i != 5] == [StateType.COMPLETED] * 7
    assert [v for i, v in enumerate(seen["values"]) if i != 5] == [
        2 * (x + 1) for x in range(8) if x != 5
    ]
    assert isinstance(seen["error"], ValueError)
    assert str(seen["error"]) == "five"


def test_an_unhandled_failing_element_fails_the_flow_with_its_own_error(processes_client):
    @flow(cluster=processes_client)
    def f() -> list[int]:
        return inc_or_fail.map(range(8)).result()

    with pytest.raises(ValueError, match="five"):
        f()


def test_retries_are_per_element(processes_client, observer, tmp_path):
    @flow(cluster=processes_client)
    def f(folder: str) -> list[int]:
        return flaky_when_odd.map(unmapped(folder), range(6)).result()

    assert f(str(tmp_path)) == list(range(6))
    bus.flush()
    (flow_run,) = observer.flow_runs.values()
    runs = sorted(observer.task_runs_of(flow_run.id), key=lambda r: r.map_index or 0)
    assert [r.attempts for r in runs] == [1, 2, 1, 2, 1, 2]
    assert StateType.RETRYING in runs[1].state_types
    assert StateType.RETRYING not in runs[0].state_types


def test_chained_maps_chunk_alike_and_a_fan_in_takes_them_all(processes_client):
    shapes = []

    @flow(cluster=processes_client)
    def f() -> int:
        first = inc.map(range(10))
        second = double.with_options(batch=True).map(first)  # takes first's chunking
        result = total(second)
        shapes.append((_chunks(first), _chunks(second)))
        return result

    assert f() == sum(2 * (x + 1) for x in range(10))
    assert shapes == [([4, 4, 2], [4, 4, 2])]


def test_logs_are_recorded_against_each_element(processes_client, observer):
    @flow(cluster=processes_client)
    def f() -> list[int]:
        return logs.map(range(10)).result()

    assert f() == list(range(10))
    bus.flush()
    by_message = {log.message: log for log in observer.logs}
    for x in range(10):
        record = by_message[f"element {x}"]
        assert record.level == logging.INFO
        assert observer.task_runs[record.task_run_id].name == f"logs-{x}"


def test_a_timeout_ends_one_element_and_its_neighbours_go_on(processes_client):
    seen = {}

    @flow(cluster=processes_client)
    def f() -> int:
        mapped = sleepy.map(range(4))
        mapped.wait()
        seen["states"] = [s.type for s in mapped.states]
        return 0

    f()
    assert seen["states"] == [
        StateType.COMPLETED,
        StateType.COMPLETED,
        StateType.TIMED_OUT,
        StateType.COMPLETED,
    ]


def test_cached_elements_are_cached_one_by_one(processes_client, observer):
    @flow(cluster=processes_client)
    def f(xs: list[int]) -> list[int]:
        return cached_square.map(xs).result()

    assert f([1, 2, 3, 4, 5]) == [1, 4, 9, 16, 25]
    assert f([1, 2, 3, 4, 99]) == [1, 4, 9, 16, 9801]
    bus.flush()
    second = [r for r in observer.flow_runs.values()][-1]
    runs = sorted(observer.task_runs_of(second.id), key=lambda r: r.map_index or 0)
    assert [r.state_types[-1] for r in runs] == [StateType.CACHED] * 4 + [StateType.COMPLETED]


def test_a_dynamic_map_is_batched_too(processes_client):
    shapes = []

    @flow(cluster=processes_client)
    def f() -> list[int]:
        mapped = inc.map(listing.submit(6))
        values = mapped.result()
        shapes.append(_chunks(mapped))
        return values

    assert f() == list(range(1, 7))
    assert shapes == [[4, 2]]


def test_batch_false_and_force_off_keep_one_dask_task_per_run(processes_client):
    kinds = []

    @flow(cluster=processes_client)
    def f() -> list[int]:
        plain = inc.with_options(batch=False).map(range(4))
        values = plain.result()
        kinds.append({type(e._run.future).__name__ for e in plain})
        return values

    assert f() == [1, 2, 3, 4]
    with dask.config.set({"daskflow.batch.force": "off"}):

        @flow(cluster=processes_client)
        def g() -> list[int]:
            mapped = inc.map(range(4))
            values = mapped.result()
            kinds.append({type(e._run.future).__name__ for e in mapped})
            return values

        assert g() == [1, 2, 3, 4]
    assert kinds == [{"Future"}, {"Future"}]


def test_chunk_sizes():
    auto = task(lambda x: x, name="sized-auto")
    assert chunk_size(auto, 1, 4) == 1
    assert chunk_size(auto, 100, 4) == 1  # durations unknown: only wide maps
    assert chunk_size(auto, 1_000, 4) == 63  # about four chunks per thread
    assert chunk_size(auto, 1_000, 4, aligned=10) == 10
    durations.note("sized-auto", 0.01)  # 10 ms each: a 100 ms chunk holds 10
    assert chunk_size(auto, 1_000, 4) == 10
    durations.note("sized-35ms", 0.035)  # chunks of 2: too little to save, not batched
    assert chunk_size(task(lambda x: x, name="sized-35ms"), 1_000, 4) == 1
    durations.note("sized-slow", 1.0)
    slow = task(lambda x: x, name="sized-slow")
    assert chunk_size(slow, 1_000, 4) == 1  # long runs are never batched
    assert chunk_size(task(lambda x: x, batch=False), 1_000, 4) == 1
    assert chunk_size(task(lambda x: x, batch=7), 1_000, 4) == 7
    with dask.config.set({"daskflow.batch.size": False}):
        assert chunk_size(task(lambda x: x, name="cfg"), 1_000, 4) == 1
    with dask.config.set({"daskflow.batch.force": True}):
        assert chunk_size(task(lambda x: x, name="forced"), 3, 4) == 2
    with pytest.raises(ConfigurationError, match="batch"):
        task(lambda x: x, batch=0)


def test_a_new_process_learns_task_durations_from_the_store(processes_client):
    from daskflow.engine.chunks import Durations
    from daskflow.store import default_observer

    slow = task(lambda x: time.sleep(0.02) or x, name="twenty-ms", batch=False)

    @flow(name="recorded-durations", cluster=processes_client)
    def f() -> list[int]:
        return slow.map(range(8)).result()

    assert f() == list(range(8))
    bus.flush()
    observer = default_observer()
    assert observer is not None
    fresh = Durations()  # what a new process knows before its first run of the flow
    fresh.seed(observer.store, "recorded-durations")
    typical = fresh.typical("twenty-ms")
    assert typical is not None
    assert 0.02 <= typical < 0.5
    assert fresh.typical("never-ran") is None
    fresh.seed(observer.store, "a-flow-never-run")  # nothing recorded: nothing learned


def test_a_death_under_a_chunk_names_the_elements_it_touched():
    from types import SimpleNamespace

    from daskflow.engine.worker_loss import Death, Placement, in_chunks

    def element(i: int, worker: str | None, state: StateType = StateType.COMPLETED) -> object:
        return SimpleNamespace(id=f"run-{i}", key=("g", i), worker=worker, latest=state, attempt=1)

    dead, alive = "tcp://dead", "tcp://alive"
    # 0 ended there (heard), 1 finished there unheard (its stored result was reloaded
    # silently: never heard of anywhere), 2 was running (rerun elsewhere), 3 not started
    elements = [element(0, alive), element(1, None), element(2, alive), element(3, alive)]
    placements = {"run-0": [Placement(dead, 1, StateType.COMPLETED)]}
    death = Death(dead, 10.0, 1, ((("g-batch", 0), 5.0),), ())
    expanded = in_chunks(death, {("g-batch", 0): elements}, placements)
    assert [k for k, _ in expanded.processing] == [("g", 0), ("g", 2)]
    assert [k for k, _, _ in expanded.lost] == [("g", 1)]
    # nothing heard of there: the first element not reloaded stands for the attempt
    unheard = in_chunks(death, {("g-batch", 0): elements}, {})
    assert [k for k, _ in unheard.processing] == [("g", 0)]

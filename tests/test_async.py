"""``async def`` tasks and flows, on every kind of cluster: one engine, awaited.

An async flow is a coroutine (``asyncio.run``); in its body ``await t(x)``
returns the value, ``t.submit``/``t.map`` futures are awaitable and work with
``asyncio.gather``; async tasks run on the workers with retries, caching,
logs and a timeout that cancels the coroutine (its ``finally`` runs).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import dask
import pytest

import daskflow
from daskflow import flow, get_run_logger, task
from daskflow.cache import task_input_hash
from daskflow.observers.events import bus
from daskflow.states import StateType
from tests.conftest import poll_for


@task
async def fetch(i: int) -> int:
    await asyncio.sleep(0.01)
    return i


@task
def double(x: int) -> int:
    return 2 * x


@flow
async def crawl(n: int) -> int:
    first = await fetch(100)  # a direct call: awaited
    futures = [fetch.submit(i) for i in range(n)]  # futures: awaitable, gathered
    values = await asyncio.gather(*futures)
    doubled = await double.map(values)  # a sync task's map, awaited whole
    return first + sum(doubled)


def test_an_async_flow_awaits_async_and_sync_tasks(cluster):
    result = asyncio.run(crawl.with_options(cluster=cluster)(5))

    assert result == 100 + 2 * sum(range(5))
    bus.flush()
    [run] = daskflow.runs(flow="crawl", limit=1)
    assert run.state.type is StateType.COMPLETED
    counts = {name: sum(by.values()) for name, by in run.task_counts().items()}
    assert counts == {"fetch": 6, "double": 5}
    assert {t.state.type for t in run.task_runs} == {StateType.COMPLETED}


def test_an_async_task_in_a_sync_flow_returns_its_value(cluster):
    @flow(cluster=cluster)
    def plain(n: int) -> list[int]:
        return [fetch(n), *fetch.map(range(n)).result()]

    assert plain(3) == [3, 0, 1, 2]


def test_an_async_flow_is_awaited_where_a_loop_runs(cluster):
    async def notebook_cell() -> tuple[int, list[int]]:
        # as in Jupyter: the loop runs already, the flow is awaited, so are two at once
        return await asyncio.gather(crawl.with_options(cluster=cluster)(2), crawl_twice())

    async def crawl_twice() -> list[int]:
        return [await crawl.with_options(cluster=cluster)(1) for _ in range(2)]

    assert asyncio.run(notebook_cell()) == [102, [100, 100]]
    # flows side by side leave dask's process-wide scheduler setting as it was
    assert dask.config.get("scheduler", None) is None


def test_subflows_either_way(processes_client):
    @flow(name="async-child", cluster=processes_client)
    async def async_child(x: int) -> int:
        return await fetch(x) + 1

    @flow(name="sync-child", cluster=processes_client)
    def sync_child(x: int) -> int:
        return async_child(x) * 10  # an async subflow called from sync code runs at once

    @flow(name="async-parent", cluster=processes_client)
    async def parent() -> list[int]:
        return [await async_child(1), sync_child(2)]

    assert asyncio.run(parent()) == [2, 30]
    bus.flush()
    [top] = daskflow.runs(flow="async-parent", limit=1)
    children = daskflow.runs(flow="async-child", limit=2)
    assert sorted(c.parent_id == top.id for c in children) == [False, True]
    [middle] = daskflow.runs(flow="sync-child", limit=1)
    assert middle.parent_id == top.id
    assert {c.parent_id for c in children} == {top.id, middle.id}


def test_a_timeout_cancels_an_async_task_and_its_finally_runs(cluster, tmp_path: Path):
    cleaned = tmp_path / "cleaned"

    @task(timeout_seconds=0.5, retries=1)
    async def stuck(folder: str) -> None:
        try:
            await asyncio.sleep(60)
        finally:
            Path(folder, "cleaned").write_text(Path(folder, "cleaned").read_text() + "x")

    @flow(cluster=cluster)
    async def waits(folder: str) -> StateType:
        future = stuck.submit(folder)
        future.wait()
        return future.state.type

    cleaned.write_text("")
    assert asyncio.run(waits(str(tmp_path))) is StateType.TIMED_OUT
    assert cleaned.read_text() == "xx"  # cancelled, then retried and cancelled again


def test_async_tasks_retry_cache_and_log(cluster, tmp_path: Path):
    attempts = tmp_path / "attempts"
    attempts.write_text("")

    @task(retries=2, cache_key_fn=task_input_hash)
    async def flaky(folder: str, x: int) -> int:
        log = Path(folder, "attempts")
        log.write_text(log.read_text() + "x")
        get_run_logger().info("attempt %d", len(log.read_text()))
        if len(log.read_text()) < 2:
            raise ConnectionError("try again")
        return x * 3

    @flow(name="async-flaky", cluster=cluster)
    async def twice(folder: str) -> list[int]:
        return [await flaky(folder, 7), await flaky(folder, 7)]

    assert asyncio.run(twice(str(tmp_path))) == [21, 21]
    assert attempts.read_text() == "xx"  # one retry; the second call hit the cache
    bus.flush()
    [run] = daskflow.runs(flow="async-flaky", limit=1)
    states = [t.state.type for t in run.task_runs]
    assert states == [StateType.COMPLETED, StateType.CACHED]
    assert run.task_runs[0].attempts == 2
    assert [r.message for r in run.logs if r.message in ("attempt 1", "attempt 2")] == [
        "attempt 1",
        "attempt 2",
    ]


def test_a_failing_async_task_raises_its_own_error_in_the_async_flow(cluster):
    @task
    async def broken() -> None:
        raise LookupError("nothing here")

    @flow(cluster=cluster)
    async def fails() -> None:
        await broken()

    with pytest.raises(LookupError, match="nothing here"):
        asyncio.run(fails())
    state = asyncio.run(fails(return_state=True))
    assert state.type is StateType.FAILED


def test_cancelling_the_await_cancels_and_records_the_flow_run(processes_client, tmp_path: Path):
    @task
    async def nap() -> None:
        await asyncio.sleep(8)

    @flow(name="async-cancelled", cluster=processes_client)
    async def sleepy(folder: str) -> None:
        try:
            await nap()
        finally:
            Path(folder, "body-finally").touch()

    async def impatient() -> None:  # as Ctrl-C in asyncio.run does: the await is cancelled
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(sleepy(str(tmp_path)), 2)

    asyncio.run(impatient())
    # recorded as ended by the time the cancellation went on, nothing left running
    bus.flush()
    [run] = daskflow.runs(flow="async-cancelled", limit=1)
    assert run.state.type is StateType.CANCELLED
    assert [t.state.type for t in run.task_runs] == [StateType.CANCELLED]
    assert (tmp_path / "body-finally").exists()


def test_an_async_flows_timeout_cancels_its_body(cluster, tmp_path: Path):
    @flow(name="async-timed-out", cluster=cluster, timeout_seconds=1)
    async def stuck(folder: str) -> None:
        try:
            await asyncio.sleep(60)
        finally:
            Path(folder, "body-finally").touch()

    state = asyncio.run(stuck(str(tmp_path), return_state=True))

    assert state.type is StateType.TIMED_OUT
    poll_for(lambda: (tmp_path / "body-finally").exists(), timeout=10)

"""Fused chains: a linear chain of task runs in one Dask task, each step still a task run.

Every test runs on a real 2-process ``LocalCluster`` and reads what the
scheduler saw (its task prefixes) next to what daskflow recorded.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import dask
import pytest
from distributed import Client, Event, LocalCluster

import daskflow
from daskflow import flow, task
from daskflow.engine.chunks import ElementFuture
from daskflow.errors import UpstreamFailedError
from daskflow.observers.events import bus
from daskflow.states import StateType


@pytest.fixture(autouse=True)
def _fusing_as_configured() -> Iterator[None]:
    """These tests fuse whatever ``DASKFLOW__BATCH__FORCE`` says (unless they say)."""
    with dask.config.set({"daskflow.batch.force": None}):
        yield


@task
def step(x: int) -> int:
    return x + 1


@task
def fail_at_five(x: int) -> int:
    if x == 5:
        raise ValueError("five")
    return x + 1


@task(retries=2, retry_delay_seconds=0.01)
def flaky(folder: str, x: int) -> int:
    marker = Path(folder, f"tried-{x}")
    if not marker.exists():
        marker.touch()
        raise RuntimeError(f"first attempt at {x}")
    return x + 1


@task
def dies_once(folder: str, x: int) -> int:
    marker = Path(folder, "died")
    if not marker.exists():
        marker.touch()
        os._exit(1)  # the worker process dies mid-chain; its nanny starts another
    return x + 1


@task
def waits_for(name: str, x: int) -> int:
    if not Event(name).wait(timeout=20):
        raise TimeoutError(f"event {name!r} was never set")
    return x + 1


def _prefixes(client: Client) -> set[str]:
    """The task prefixes the scheduler has seen (``inc-chain``, ``inc``, ...).

    The cluster is shared by the module's tests: each names its tasks its own way.
    """

    def read(dask_scheduler: object) -> list[str]:
        return list(dask_scheduler.task_prefixes)  # type: ignore[attr-defined]

    return set(client.run_on_scheduler(read))


def test_a_linear_chain_is_one_dask_task_and_each_step_its_own_run(processes_client, observer):
    chunks = []
    one = step.with_options(name="one")

    @flow(cluster=processes_client)
    def chain(n: int) -> int:
        future = one.submit(0)
        for _ in range(n - 1):
            future = one.submit(future)
        value = future.result()
        chunks.append(future._run.future)
        return value

    assert chain(50) == 50
    (last,) = chunks
    assert isinstance(last, ElementFuture)
    assert last.chunk.size == 50
    assert {"one-chain", "one-chain-status"} <= _prefixes(processes_client)
    assert "one" not in _prefixes(processes_client)
    bus.flush()
    (flow_run,) = observer.flow_runs.values()
    runs = observer.task_runs_of(flow_run.id)
    assert len({r.id for r in runs}) == 50
    for run in runs:
        assert run.state_types == [StateType.PENDING, StateType.RUNNING, StateType.COMPLETED]
    stored = daskflow.get_run(flow_run.id).task_runs
    assert len(stored) == 50
    assert {t.state.type for t in stored} == {StateType.COMPLETED}


def test_a_step_the_flow_still_holds_ends_the_chain(processes_client):
    # fused, ``first.result()`` would wait for the step after it, which waits for the
    # event set only after ``first.result()`` returned: the flow would time out
    name = f"fused-{os.getpid()}-{id(processes_client)}"
    held_step = step.with_options(name="held")

    @flow(cluster=processes_client)
    def held() -> tuple[int, int]:
        first = held_step.submit(0)
        second = waits_for.submit(name, first)
        value = first.result()
        Event(name, client=processes_client).set()
        return value, second.result()

    assert held() == (1, 2)
    assert "held-chain" not in _prefixes(processes_client)


def test_a_failing_step_fails_alone_and_the_steps_after_it_are_upstream_failed(
    processes_client, observer
):
    @flow(cluster=processes_client)
    def chain() -> int:
        future = fail_at_five.submit(0)
        for _ in range(9):
            future = fail_at_five.submit(future)
        return future.result()

    with pytest.raises(UpstreamFailedError):
        chain()
    assert "fail_at_five-chain" in _prefixes(processes_client)
    bus.flush()
    (flow_run,) = observer.flow_runs.values()
    by_name = {r.id: r.state_types[-1] for r in observer.task_runs_of(flow_run.id)}.values()
    finals = list(by_name)
    assert finals.count(StateType.COMPLETED) == 5  # 0 -> 1 ... 4 -> 5
    assert finals.count(StateType.FAILED) == 1  # the step given 5
    assert finals.count(StateType.UPSTREAM_FAILED) == 4


def test_retries_happen_inside_the_chain(processes_client, observer, tmp_path):
    @flow(cluster=processes_client)
    def chain() -> int:
        future = flaky.submit(str(tmp_path), 0)
        for _ in range(4):
            future = flaky.submit(str(tmp_path), future)
        return future.result()

    assert chain() == 5
    assert "flaky-chain" in _prefixes(processes_client)
    bus.flush()
    (flow_run,) = observer.flow_runs.values()
    for run in observer.task_runs_of(flow_run.id):
        assert run.state_types == [
            StateType.PENDING,
            StateType.RUNNING,
            StateType.RETRYING,
            StateType.RUNNING,
            StateType.COMPLETED,
        ]


def test_a_worker_dying_mid_chain_reruns_the_chain_and_every_step_is_recorded(tmp_path, observer):
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        survivor = step.with_options(name="survivor")

        @flow(cluster=client)
        def chain() -> int:
            future = survivor.submit(0)
            future = survivor.submit(future)
            future = dies_once.submit(str(tmp_path), future)
            future = survivor.submit(future)
            return future.result()

        assert chain() == 4
        assert "survivor-chain" in _prefixes(client)
    bus.flush()
    (flow_run,) = observer.flow_runs.values()
    stored = daskflow.get_run(flow_run.id).task_runs
    assert len(stored) == 4
    assert {t.state.type for t in stored} == {StateType.COMPLETED}
    # the attempt that died is on record (besides the four that completed), and so are
    # steps that ran again because their results died with the worker. Which step died
    # is an estimate when the worker sent no event of the chain (worker_loss.in_chunks)
    assert sum(t.attempts for t in stored) >= 5


def test_fuse_chains_false_keeps_one_dask_task_per_run(processes_client):
    unfused = step.with_options(name="unfused")
    with dask.config.set({"daskflow.batch.fuse-chains": False}):

        @flow(cluster=processes_client)
        def chain() -> int:
            future = unfused.submit(0)
            for _ in range(4):
                future = unfused.submit(future)
            return future.result()

        assert chain() == 5
    prefixes = _prefixes(processes_client)
    assert "unfused" in prefixes
    assert "unfused-chain" not in prefixes

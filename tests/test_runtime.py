"""Runtime context, ``is_cancelled`` and the run hooks (SPEC §1 "Runtime context").

Real flows on ``"sync"``, an in-process cluster and a 2-process cluster
(tasks on worker processes read facts their flow's process shipped once);
batched maps and fused chains, where many task runs share one Dask task.
"""

from __future__ import annotations

import datetime
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
import pytest

import daskflow
from daskflow import flow, get_run, is_cancelled, task
from daskflow.context import FlowRunContext, TaskRunContext
from daskflow.engine.cancellation import cancel_flow_run
from daskflow.engine.chunks import ElementFuture
from daskflow.errors import CancelledRunError
from daskflow.runtime import flow_run, task_run
from daskflow.states import StateType
from tests.conftest import poll_for


@pytest.fixture(autouse=True)
def _batching_as_configured() -> Iterator[None]:
    """Batching and fusing as each test asks, whatever DASKFLOW__BATCH__FORCE says."""
    with dask.config.set({"daskflow.batch.force": None}):
        yield


def facts() -> dict[str, Any]:
    """What a task or a flow function sees of its runs."""
    return {
        "flow_run.id": flow_run.id,
        "flow_run.name": flow_run.name,
        "flow_run.flow_name": flow_run.flow_name,
        "flow_run.parameters": flow_run.parameters,
        "flow_run.scheduled_start_time": flow_run.scheduled_start_time,
        "task_run.id": task_run.id,
        "task_run.name": task_run.name,
        "task_run.task_name": task_run.task_name,
        "task_run.attempt": task_run.attempt,
        "task_run.tags": task_run.tags,
        "pid": os.getpid(),
    }


@task(tags=["etl"], task_run_name="look-{x}")
def look(x: int) -> dict[str, Any]:
    return facts()


@task(batch=4)
def look_batched(x: int) -> dict[str, Any]:
    return facts()


@task
def look_step(previous: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [*previous, facts()]


@task(retries=2, retry_delay_seconds=0)
def third_time_lucky(folder: str) -> list[int | None]:
    path = Path(folder) / "attempts"
    with path.open("a") as f:
        f.write(f"{task_run.attempt},")
    if task_run.attempt < 3:
        raise RuntimeError("not yet")
    return [int(a) for a in path.read_text().strip(",").split(",")]


def test_a_task_and_its_flow_see_their_runs(cluster):
    @flow(cluster=cluster, flow_run_name="nightly-{day}")
    def etl(day: str, n: int = 2) -> tuple[dict[str, Any], dict[str, Any]]:
        return facts(), look(7)

    in_flow, in_task = etl("mon")
    (recorded,) = daskflow.runs(flow="etl", limit=1)
    for seen in (in_flow, in_task):
        assert seen["flow_run.id"] == recorded.id
        assert seen["flow_run.name"] == "nightly-mon"
        assert seen["flow_run.flow_name"] == "etl"
        assert seen["flow_run.parameters"] == {"day": "mon", "n": 2}
        assert isinstance(seen["flow_run.scheduled_start_time"], datetime.datetime)
    (look_run,) = recorded.task_runs
    assert in_task["task_run.id"] == look_run.id
    assert in_task["task_run.name"] == "look-7"
    assert in_task["task_run.task_name"] == "look"
    assert in_task["task_run.attempt"] == 1
    assert in_task["task_run.tags"] == {"etl"}
    # a flow function is in no task run
    assert [in_flow[k] for k in in_flow if k.startswith("task_run.")] == [None] * 5


def test_on_a_process_cluster_the_task_ran_elsewhere(processes_client):
    @flow(cluster=processes_client)
    def etl(day: str) -> dict[str, Any]:
        return look(1)

    seen = etl("tue")
    assert seen["pid"] != os.getpid()  # the facts really crossed to a worker process
    assert seen["flow_run.parameters"] == {"day": "tue"}


def test_outside_a_run_everything_is_none():
    assert facts() | {"pid": None} == dict.fromkeys(facts(), None)
    assert is_cancelled() is False
    assert TaskRunContext.get() is None
    assert FlowRunContext.get() is None
    assert daskflow.runtime.flow_run.id is None
    with pytest.raises(AttributeError, match="nope"):
        _ = flow_run.nope


def test_attempt_counts_from_one(cluster, tmp_path):
    @flow(cluster=cluster)
    def f(folder: str) -> list[int | None]:
        return third_time_lucky(folder)

    assert f(str(tmp_path)) == [1, 2, 3]


def test_each_element_of_a_batched_map_sees_its_own_run(processes_client):
    @flow(cluster=processes_client)
    def f() -> list[dict[str, Any]]:
        mapped = look_batched.map(range(10))
        values = mapped.result()
        assert all(isinstance(m._run.future, ElementFuture) for m in mapped)  # batched
        return values

    seen = f()
    (recorded,) = daskflow.runs(flow=f.name, limit=1)
    by_name = {r.name: r.id for r in recorded.task_runs}
    assert [s["task_run.name"] for s in seen] == [f"look_batched-{i}" for i in range(10)]
    assert [s["task_run.id"] for s in seen] == [by_name[s["task_run.name"]] for s in seen]
    assert {s["flow_run.id"] for s in seen} == {recorded.id}


def test_each_step_of_a_fused_chain_sees_its_own_run(processes_client):
    @flow(cluster=processes_client)
    def chain() -> list[dict[str, Any]]:
        future = look_step.submit([])
        for _ in range(4):
            future = look_step.submit(future)
        value = future.result()
        assert isinstance(future._run.future, ElementFuture)  # fused into one Dask task
        return value

    seen = chain()
    (recorded,) = daskflow.runs(flow="chain", limit=1)
    assert sorted(s["task_run.id"] for s in seen) == sorted(r.id for r in recorded.task_runs)
    assert len({s["task_run.id"] for s in seen}) == 5
    assert {s["flow_run.name"] for s in seen} == {recorded.name}


def test_context_classes(cluster):
    @task
    def inside() -> tuple[str | None, int, bool]:
        context = TaskRunContext.get()
        assert context is not None
        return context.task_run_id, context.attempt, FlowRunContext.get() is None

    @flow(cluster=cluster)
    def f(x: int) -> tuple[Any, ...]:
        context = FlowRunContext.get()
        assert context is not None
        return context.flow_run_id, context.parameters, inside()

    flow_run_id, parameters, (task_run_id, attempt, none_in_task) = f(3)
    (recorded,) = daskflow.runs(flow="f", limit=1)
    assert (flow_run_id, parameters) == (recorded.id, {"x": 3})
    assert (task_run_id, attempt, none_in_task) == (recorded.task_runs[0].id, 1, True)


@task
def loop_until_cancelled(folder: str) -> str:
    (Path(folder) / "started").write_text(flow_run.id)
    for _ in range(600):  # a long Python loop that asks now and then
        if is_cancelled():
            (Path(folder) / "stopped").write_text("stopped early")
            return "stopped"
        time.sleep(0.05)
    return "ran to the end"


@pytest.mark.parametrize("where", ["threads", "processes"])
def test_is_cancelled_lets_a_long_task_stop(request, where, tmp_path):
    client = request.getfixturevalue(f"{where}_client")

    @flow(cluster=client)
    def long(folder: str) -> str:
        assert not is_cancelled()
        return loop_until_cancelled(folder)

    started = tmp_path / "started"

    def cancel_once_started() -> None:
        # the whole id: the file exists a moment before its text is written
        poll_for(lambda: started.exists() and len(started.read_text()) == 32, timeout=60)
        assert cancel_flow_run(started.read_text(), "enough")

    canceller = threading.Thread(target=cancel_once_started)
    canceller.start()
    state = long(str(tmp_path), return_state=True)
    canceller.join()
    assert state.type is StateType.CANCELLED
    poll_for(lambda: (tmp_path / "stopped").exists(), timeout=30)


# -- hooks ---------------------------------------------------------------------


def record(folder: str, what: str) -> None:
    with (Path(folder) / "hooks").open("a") as f:
        f.write(f"{what}\n")


def recorded_hooks(folder: Path) -> list[str]:
    path = folder / "hooks"
    return path.read_text().splitlines() if path.exists() else []


def test_task_on_running_runs_where_the_task_runs_before_each_attempt(request, cluster, tmp_path):
    folder = str(tmp_path)

    def on_running(tsk, run, state) -> None:
        record(folder, f"running {tsk.name} attempt {run.attempt} {state.type.value} {os.getpid()}")

    def broken(tsk, run, state) -> None:
        raise RuntimeError("a broken hook")

    retried = third_time_lucky.with_options(on_running=[broken, on_running])

    @flow(cluster=cluster)
    def f() -> list[int | None]:
        return retried(folder)

    assert f() == [1, 2, 3]  # the broken hook broke nothing
    lines = recorded_hooks(tmp_path)
    assert [line.rsplit(" ", 1)[0] for line in lines] == [
        f"running third_time_lucky attempt {i} RUNNING" for i in (1, 2, 3)
    ]
    pids = {int(line.rsplit(" ", 1)[1]) for line in lines}
    if request.node.callspec.params["cluster"] == "processes":
        assert os.getpid() not in pids  # on the worker, where the attempts ran
    else:
        assert pids == {os.getpid()}


def test_task_on_crashed_and_on_cancellation(threads_client, tmp_path):
    folder = str(tmp_path)

    def hook(name: str):
        return lambda tsk, run, state: record(folder, f"{name} {tsk.name} {state.type.value}")

    @task(on_crashed=[hook("crashed")], on_failure=[hook("failure")])
    def exits() -> None:
        raise SystemExit(3)

    @task(on_cancellation=[hook("cancellation")], on_completion=[hook("completion")])
    def gives_up() -> None:
        raise CancelledRunError("task run 'gives_up'", "its command was killed")

    @flow(cluster=threads_client, on_crashed=[hook("flow-crashed")])
    def f() -> None:
        gives_up.submit().wait()
        exits.submit()  # never waited on: the flow does not handle its end

    state = f(return_state=True)
    assert state.type is StateType.CRASHED  # a crashed task run the flow did not handle
    assert recorded_hooks(tmp_path) == [
        "cancellation gives_up CANCELLED",
        "crashed exits CRASHED",
        "failure exits CRASHED",
        "flow-crashed f CRASHED",
    ]


def test_flow_on_running_and_on_crashed_on_an_interrupt(tmp_path):
    folder = str(tmp_path)

    def hook(name: str):
        return lambda flw, run, state: record(folder, f"{name} {run.name} {state.type.value}")

    @flow(
        cluster="sync",
        retries=1,
        flow_run_name="try-{x}",
        on_running=[hook("running")],
        on_crashed=[hook("crashed")],
        on_failure=[hook("failure")],
    )
    def f(x: int) -> None:
        if (Path(folder) / "hooks").read_text().count("running") == 1:
            raise ValueError("first attempt fails, is retried")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        f(1)
    assert recorded_hooks(tmp_path) == [
        "running try-1 RUNNING",
        "running try-1 RUNNING",
        "crashed try-1 CRASHED",
        "failure try-1 CRASHED",
    ]
    (run,) = daskflow.runs(flow="f", limit=1)
    assert get_run(run.id).state.type is StateType.CRASHED


def test_a_served_run_starts_at_its_scheduled_slot(tmp_path):
    from tests.test_serve import InThread

    name = f"served-{os.getpid()}-{time.monotonic_ns()}"

    @flow(name=name, cluster="sync")
    def served(folder: str) -> None:
        path = Path(folder) / flow_run.id
        path.write_text(str(flow_run.scheduled_start_time.timestamp()))

    serving = InThread(served, interval=1, parameters={"folder": str(tmp_path)})
    try:
        poll_for(lambda: any(tmp_path.iterdir()), timeout=30)
    finally:
        serving.close()
    written = next(iter(tmp_path.iterdir()))
    recorded = get_run(written.name)
    assert recorded.scheduled_time is not None
    assert float(written.read_text()) == pytest.approx(recorded.scheduled_time.timestamp())

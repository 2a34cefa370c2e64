"""Tasks that call, submit and map other tasks (Prefect 3): nested task runs.

Inside a task run, ``inner(x)`` runs inline in the task's thread, and
``inner.submit`` / ``inner.map`` go to the cluster through the worker's
client; every nested run belongs to the flow run and is recorded with its
parent task run, on every kind of cluster.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from distributed import Client, LocalCluster

import daskflow
from daskflow import flow, task
from daskflow.observers.events import bus
from daskflow.states import StateType


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


@task
def add_one(x: int) -> int:
    return x + 1


@task
def where() -> tuple[int, int]:
    return os.getpid(), threading.get_ident()


@task
def uses_helpers(x: int) -> dict[str, Any]:
    here = (os.getpid(), threading.get_ident())
    direct = add_one(x)
    submitted = add_one.submit(x + 10).result()
    mapped = add_one.map([x, x + 1, x + 2]).result()
    return {"direct": direct, "submitted": submitted, "mapped": mapped, "inline": where() == here}


def last_run(flow_name: str) -> Any:
    bus.flush()
    [run] = daskflow.runs(flow=flow_name, limit=1)
    return run


def test_a_task_calls_submits_and_maps_tasks_of_its_flow_run(cluster: object):
    name = unique("pipeline")

    @flow(cluster=cluster, name=name)
    def pipeline(x: int) -> dict[str, Any]:
        return uses_helpers(x)

    state = pipeline(1, return_state=True)

    assert state.result() == {"direct": 2, "submitted": 12, "mapped": [2, 3, 4], "inline": True}
    run = last_run(name)
    [parent] = [t for t in run.task_runs if t.task_name == "uses_helpers"]
    nested = [t for t in run.task_runs if t.id != parent.id]
    assert sorted(t.name for t in nested) == [
        "add_one",
        "add_one",
        "add_one-0",
        "add_one-1",
        "add_one-2",
        "where",
    ]
    assert {t.parent_task_run_id for t in nested} == {parent.id}
    assert parent.parent_task_run_id is None
    assert {t.state.type for t in run.task_runs} == {StateType.COMPLETED}
    assert all(t.flow_run_id == run.id for t in nested)
    assert run.state.type is StateType.COMPLETED


def test_nested_submits_never_deadlock_a_worker_of_one_thread():
    @task
    def fan_out(n: int) -> int:
        futures = [add_one.submit(i) for i in range(n)]
        return sum(f.result() for f in futures) + sum(add_one.map(range(n)).result())

    @flow
    def pipeline(n: int) -> list[int]:
        return fan_out.map([n, n]).result()

    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
        ) as one_thread,
        Client(one_thread, set_as_default=False) as client,
    ):
        assert pipeline.with_options(cluster=client)(4) == [20, 20]


def test_a_nested_failure_reaches_the_parent_as_its_own_type(cluster: object):
    broken_name = unique("broken")

    @task(name=broken_name, retries=1)
    def broken(x: int) -> int:
        raise KeyError(f"no {x}")

    @task
    def careful(x: int) -> list[str]:
        seen = []
        for attempt in (lambda: broken(x), lambda: broken.submit(x).result()):
            try:
                attempt()
            except KeyError as exc:
                seen.append(str(exc))
        future = broken.submit(x)
        future.wait()
        seen.append(future.state.type.value)
        return seen

    name = unique("pipeline")

    @flow(cluster=cluster, name=name)
    def pipeline(x: int) -> list[str]:
        return careful(x)

    state = pipeline(7, return_state=True)

    assert state.result() == ["'no 7'", "'no 7'", "FAILED"]
    failed = [t for t in last_run(name).task_runs if t.task_name == broken_name]
    assert len(failed) == 3
    assert {(t.state.type, t.attempts, t.error_type) for t in failed} == {
        (StateType.FAILED, 2, "KeyError")
    }
    assert state.is_completed()  # the parent looked at its failures: its business


def test_a_parent_ends_after_the_runs_it_started_without_waiting(cluster: object, tmp_path: Path):
    marker = tmp_path / "written"

    @task
    def write(path: str) -> None:
        Path(path).write_text("done")

    @task
    def fire_and_forget(path: str) -> str:
        write.submit(path)
        return "returned"

    name = unique("pipeline")

    @flow(cluster=cluster, name=name)
    def pipeline(path: str) -> str:
        return fire_and_forget(path)

    state = pipeline(str(marker), return_state=True)

    assert state.result() == "returned"
    assert marker.read_text() == "done"
    runs = {t.task_name: t for t in last_run(name).task_runs}
    assert runs["write"].state.type is StateType.COMPLETED
    assert runs["write"].parent_task_run_id == runs["fire_and_forget"].id
    assert runs["write"].end_time is not None
    assert runs["fire_and_forget"].end_time is not None
    assert runs["write"].end_time <= runs["fire_and_forget"].end_time


def test_nested_runs_take_futures_of_each_other(cluster: object):
    @task
    def pair(x: int) -> list[int]:
        return [x, x]

    @task
    def chain(x: int) -> int:
        first = add_one.submit(x)
        second = add_one.submit(first)
        many = add_one.map(pair.submit(x))  # its width known when pair ends
        return add_one(second) + sum(many.result())

    name = unique("pipeline")

    @flow(cluster=cluster, name=name)
    def pipeline(x: int) -> int:
        return chain(x)

    assert pipeline(1) == 4 + 2 * 2


def test_runs_show_names_the_parent_of_nested_runs(tmp_path: Path):
    script = tmp_path / "nested.py"
    script.write_text(
        "from daskflow import flow, task\n"
        "@task\n"
        "def leaf(x):\n"
        "    return x\n"
        "@task\n"
        "def branch(x):\n"
        "    return leaf(x) + leaf.submit(x).result()\n"
        "@flow\n"
        "def tree(x: int = 1):\n"
        "    return branch(x)\n"
    )
    env = {**os.environ, "DASKFLOW_STORE": str(tmp_path / "runs.db")}

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "daskflow.cli", *args],
            capture_output=True,
            text=True,
            env={**env, "COLUMNS": "200"},
            cwd=tmp_path,
            timeout=180,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    cli("run", f"{script}:tree", "--cluster", "sync")
    [run] = daskflow.history.runs(store=str(tmp_path / "runs.db"))
    table = cli("runs", "show", run.id)
    assert "PARENT" in table
    assert len([line for line in table.splitlines() if "leaf" in line and "branch" in line]) == 2


@pytest.mark.parametrize("track", [True, False])
def test_a_task_called_inside_a_bare_task_run_is_its_nested_run(track: bool):
    outer_name, inner_name = unique("outer"), unique("inner")
    inner = task(add_one.fn, name=inner_name)

    @task(name=outer_name)
    def outer(x: int) -> int:
        return inner(x) * 10

    import dask

    with dask.config.set({"daskflow.track-bare-tasks": track}):
        assert outer(1) == 20
    bus.flush()
    if not track:
        assert daskflow.task_runs(task=inner_name) == []
        return
    [outer_run] = daskflow.task_runs(task=outer_name)
    [inner_run] = daskflow.task_runs(task=inner_name)
    assert inner_run.parent_task_run_id == outer_run.id
    assert inner_run.flow_run_id is None


def test_resuming_a_flow_reuses_none_of_the_runs_its_tasks_started(tmp_path: Path):
    marker = tmp_path / "failed-once"
    name = unique("resumable")
    stored_add_one = add_one.with_options(persist_result=True)

    @task
    def helper_user(x: int) -> int:
        return stored_add_one(x)  # a nested add_one, stored, recorded first

    @task
    def fails_once() -> None:
        if not marker.exists():
            marker.touch()
            raise RuntimeError("first run fails")

    @flow(cluster="sync", name=name, persist_result=True)
    def resumable(x: int) -> tuple[int, int]:
        nested = helper_user(x + 100)
        direct = stored_add_one(x)  # same task and run name: must not take the nested result
        fails_once()
        return nested, direct

    with pytest.raises(RuntimeError, match="first run fails"):
        resumable(1)
    assert resumable.resume(last_run(name).id) == (102, 2)


def test_a_nested_run_of_a_limited_tag_runs_within_its_parents_slot(cluster: object):
    tag = unique("nested-db")
    daskflow.concurrency_limit(tag, 1)
    query = add_one.with_options(tags=[tag])

    @task(tags=[tag])
    def transaction(x: int) -> int:  # holds the only slot while its query runs
        return query(x) + query.submit(x).result()

    @flow(cluster=cluster)
    def pipeline(x: int) -> int:
        return transaction(x)

    assert pipeline(1) == 4

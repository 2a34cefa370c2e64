"""Tasks called outside any flow (Prefect 3): tracked task runs of no flow run.

``t(x)`` runs in this thread, recorded, with retries and caching; ``.submit``
and ``.map`` run on the default cluster (here the 2-process test cluster, set
as ``daskflow.cluster``); ``daskflow.task_runs()`` and ``daskflow task-runs
list`` show them with no flow run; ``track-bare-tasks: false`` gives the plain
function back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import dask
import pytest

import daskflow
from daskflow import task
from daskflow.cache import task_input_hash
from daskflow.errors import NoFlowRunError
from daskflow.states import StateType


def unique(name: str) -> str:
    """A task name no other test uses: each test reads its own runs back."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def test_a_bare_call_is_a_recorded_task_run_with_retries(tmp_path: Path):
    marker = tmp_path / "failed-once"

    def flaky(x: int) -> int:
        if not marker.exists():
            marker.touch()
            raise ValueError("first attempt fails")
        return x * 2

    name = unique("flaky")
    flaky_task = task(flaky, name=name, retries=1)

    assert flaky_task(21) == 42

    [run] = daskflow.task_runs(task=name)
    assert run.flow_run_id is None
    assert run.state.type is StateType.COMPLETED
    assert run.attempts == 2
    assert flaky_task.fn(1) == 2  # the plain function: nothing more recorded
    assert len(daskflow.task_runs(task=name)) == 1


def test_a_bare_call_raises_the_tasks_error_and_records_it():
    name = unique("broken")

    @task(name=name)
    def broken() -> None:
        raise KeyError("missing")

    with pytest.raises(KeyError, match="missing"):
        broken()
    [run] = daskflow.task_runs(task=name, state="failed")
    assert run.error_type == "KeyError"
    assert run.flow_run_id is None


def test_bare_calls_are_cached(tmp_path: Path):
    calls = tmp_path / "calls"
    name = unique("cached")

    @task(name=name, cache_key_fn=task_input_hash)
    def slow_square(x: int) -> int:
        with calls.open("a") as out:
            out.write("x")
        return x * x

    assert slow_square(7) == 49
    assert slow_square(7) == 49
    assert calls.read_text() == "x"  # the second call reused the stored result
    states = [r.state.type for r in daskflow.task_runs(task=name)]
    assert states == [StateType.CACHED, StateType.COMPLETED]  # newest first


def add_one(x: int) -> int:
    return x + 1


def test_submit_and_map_outside_a_flow_run_on_the_default_cluster(processes_client):
    name = unique("add-one")
    remote = task(add_one, name=name)
    with dask.config.set({"daskflow.cluster": processes_client}):
        future = remote.submit(1)
        mapped = remote.map([10, 20, 30])
        assert future.result() == 2
        assert mapped.result() == [11, 21, 31]

    def recorded() -> list[Any]:
        return daskflow.task_runs(task=name, state="completed")

    from tests.conftest import poll_for

    poll_for(lambda: len(recorded()) == 4, timeout=30)  # the last events come after results
    runs = recorded()
    assert {r.flow_run_id for r in runs} == {None}
    assert {r.worker for r in runs} <= set(processes_client.scheduler_info()["workers"])
    assert sorted(r.name for r in runs) == [name, f"{name}-0", f"{name}-1", f"{name}-2"]


def test_tracking_bare_calls_can_be_turned_off():
    name = unique("untracked")
    plain = task(add_one, name=name)
    with dask.config.set({"daskflow.track-bare-tasks": False}):
        assert plain(1) == 2
        with pytest.raises(NoFlowRunError, match=rf"{name}\.submit\(\)"):
            plain.submit(1)
    assert daskflow.task_runs(task=name) == []


def test_a_task_called_inside_a_bare_task_run_is_recorded_too():
    outer_name, inner_name = unique("outer"), unique("inner")
    inner = task(add_one, name=inner_name)

    @task(name=outer_name)
    def outer(x: int) -> int:
        return inner(x) * 10

    assert outer(1) == 20
    [outer_run] = daskflow.task_runs(task=outer_name)
    [inner_run] = daskflow.task_runs(task=inner_name)  # in the same thread: its own run
    assert outer_run.state.type is inner_run.state.type is StateType.COMPLETED
    assert outer_run.flow_run_id is inner_run.flow_run_id is None


def test_task_runs_list_in_the_cli_shows_bare_runs():
    name = unique("cli-listed")
    task(add_one, name=name)(41)
    daskflow.task_runs(limit=1)  # recorded before the CLI reads the store

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "daskflow.cli", "task-runs", "list", *args],
            capture_output=True,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
            timeout=60,
            check=False,
        )

    listed = cli("--task", name, "--json")
    assert listed.returncode == 0, listed.stderr
    [record] = json.loads(listed.stdout)
    assert (record["task_name"], record["flow_run_id"], record["state"]) == (
        name,
        None,
        "COMPLETED",
    )
    table = cli("--task", name)
    assert name in table.stdout
    assert "COMPLETED" in table.stdout
    assert cli("--help").stdout.startswith("Usage:")

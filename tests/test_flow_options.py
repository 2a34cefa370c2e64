"""Flow-level options: retries, timeouts, run names, log_prints, resources."""

from __future__ import annotations

import logging
import threading

import pytest

from daskflow import flow, task
from daskflow.states import StateType
from tests.resources.tasks import count_attempt, inc

gate = threading.Event()


def test_flow_retries_rerun_the_function(tmp_path, observer):
    @flow(cluster="sync", retries=2, retry_delay_seconds=0)
    def f(folder: str) -> int:
        if count_attempt(folder, "flow") < 3:
            raise ConnectionError("transient")
        return inc(1)

    assert f(str(tmp_path)) == 2
    (run,) = observer.flow_runs.values()
    assert run.state_types.count(StateType.RETRYING) == 2
    assert run.state.type is StateType.COMPLETED


def test_flow_timeout_ends_the_run(threads_client):
    @flow(cluster=threads_client, timeout_seconds=0.3)
    def f() -> None:
        gate.wait(30)  # the flow function itself blocks

    try:
        state = f(return_state=True)
    finally:
        gate.set()
    assert state.type is StateType.TIMED_OUT
    assert state.error_type == "FlowRunTimeout"


def test_task_and_flow_run_names(observer):
    named = inc.with_options(task_run_name="inc-{x}")

    @flow(cluster="sync", flow_run_name="nightly-{day}")
    def f(day: str) -> list[int]:
        return named.map([1, 2]).result()

    assert f("monday") == [2, 3]
    (run,) = observer.flow_runs.values()
    assert run.name == "nightly-monday"
    assert sorted(r.name for r in observer.task_runs.values()) == ["inc-1", "inc-2"]
    assert inc.options.task_run_name is None  # with_options made a copy


@task(log_prints=True)
def chatty(x: int) -> int:
    print(f"working on {x}")
    return x


def test_log_prints_turns_print_into_log_records(caplog, threads_client):
    @flow(cluster=threads_client)
    def f() -> int:
        return chatty(7)

    with caplog.at_level(logging.INFO, logger="daskflow.runs.prints"):
        assert f() == 7
    assert "working on 7" in caplog.text


def test_resources_are_dask_worker_resources(processes_client):
    @flow(cluster=processes_client)
    def f() -> int:
        return inc.with_options(resources={"GPU": 1}).submit(1).result(timeout=0.5)

    # no worker offers a GPU: the run waits instead of running anywhere
    with pytest.raises(TimeoutError):
        f.with_options(timeout_seconds=5)()

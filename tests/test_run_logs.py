"""Logs of runs: from the flow function, from tasks on any worker, from print."""

from __future__ import annotations

import logging

import pytest

from daskflow import flow, task
from daskflow.api.logger import get_run_logger
from daskflow.errors import NoFlowRunError


@task
def noisy(x: int) -> int:
    get_run_logger().info("processing %d", x)
    if x < 0:
        try:
            raise ValueError("negative")
        except ValueError:
            get_run_logger().exception("could not process %d", x)
    return x


@task(log_prints=True)
def printer(x: int) -> int:
    print("printed", x)
    return x


def test_logs_from_tasks_on_every_cluster_reach_observers(cluster, observer):
    @flow(cluster=cluster)
    def f() -> int:
        get_run_logger().warning("flow starting")
        total = sum(noisy.map([1, 2, -3]).result())
        return total + printer(10)

    assert f() == 10
    (flow_run,) = observer.flow_runs.values()
    runs = {r.id: r for r in observer.task_runs.values()}
    by_message = {log.message.splitlines()[0]: log for log in observer.logs}
    assert by_message["flow starting"].task_run_id is None
    assert by_message["flow starting"].level == logging.WARNING
    for x in (1, 2, -3):
        record = by_message[f"processing {x}"]
        assert record.flow_run_id == flow_run.id
        assert runs[record.task_run_id].task_name == "noisy"
    failure = by_message["could not process -3"]
    assert "ValueError: negative" in failure.message  # the traceback travels too
    assert failure.level == logging.ERROR
    assert runs[by_message["printed 10"].task_run_id].task_name == "printer"


def test_get_run_logger_outside_a_run():
    with pytest.raises(NoFlowRunError, match=r"get_run_logger\(\)"):
        get_run_logger()


def test_logs_from_a_cluster_reached_by_address(processes_client, observer):
    address = processes_client.scheduler.address

    @flow(cluster=address)
    def f() -> int:
        return noisy(5)

    assert f() == 5
    (record,) = [log for log in observer.logs if log.message == "processing 5"]
    assert observer.task_runs[record.task_run_id].task_name == "noisy"


def test_each_retry_is_a_log_record_naming_the_attempt_the_error_and_the_delay(
    cluster, observer, tmp_path
):
    from tests.resources.tasks import fails_twice

    @flow(cluster=cluster)
    def retried(folder: str) -> str:
        return fails_twice.with_options(retries=3, retry_delay_seconds=0.05)(folder)

    assert retried(str(tmp_path)) == "ok"
    records = [log for log in observer.logs if log.logger == "daskflow.runs.retries"]
    assert [r.message for r in records] == [
        f"attempt {i} of 4 failed (ConnectionError: not yet); retrying in 0.05 s" for i in (1, 2)
    ]
    assert all(r.level == logging.WARNING for r in records)
    [task_run] = observer.task_runs.values()
    assert {r.task_run_id for r in records} == {task_run.id}

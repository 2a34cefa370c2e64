"""Prefect's task runners map onto ``cluster=`` (SPEC §1, "More of Prefect 3")."""

from __future__ import annotations

import threading

import dask
import pytest
from distributed import LocalCluster, get_worker

from daskflow import flow, task
from daskflow.errors import ConfigurationError
from daskflow.task_runners import (
    ConcurrentTaskRunner,
    DaskTaskRunner,
    ProcessPoolTaskRunner,
    SequentialTaskRunner,
    ThreadPoolTaskRunner,
)


@task
def where() -> tuple[str, int]:
    """The worker's address and how many threads it has ('sync' with no worker)."""
    try:
        worker = get_worker()
    except ValueError:
        return ("sync", 1)
    return (worker.address, worker.state.nthreads)


@flow
def located(n: int = 4) -> list[tuple[str, int]]:
    return [f.result() for f in [where.submit() for _ in range(n)]]


def test_a_thread_pool_runs_tasks_on_n_threads_in_this_process():
    runs = located.with_options(task_runner=ThreadPoolTaskRunner(max_workers=3))()
    assert {threads for _, threads in runs} == {3}
    assert all(address.startswith("inproc://") for address, _ in runs)


def test_the_same_thread_pool_serves_the_next_flow_run():
    first = located.with_options(task_runner=ThreadPoolTaskRunner(max_workers=2))(1)
    again = located.with_options(task_runner=ConcurrentTaskRunner(max_workers=2))(1)
    assert first == again


@task
def process_id(i: int) -> int:
    import os

    return os.getpid()


@flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
def pids(n: int) -> set[int]:
    return {f.result() for f in process_id.map(range(n))}


def test_a_process_pool_runs_tasks_in_n_worker_processes():
    import os

    seen = pids(8)
    assert os.getpid() not in seen
    assert 1 <= len(seen) <= 2
    threads = located.with_options(task_runner=ProcessPoolTaskRunner(max_workers=2))(4)
    assert {n for _, n in threads} == {1}
    assert len({address for address, _ in threads}) <= 2


def test_the_runner_class_itself_is_taken_as_prefect_does():
    runs = located.with_options(task_runner=ThreadPoolTaskRunner)(1)
    assert runs[0][0].startswith("inproc://")


@flow
def parent_and_child() -> tuple[str, str]:
    return (where()[0], child())


@flow(task_runner=SequentialTaskRunner())
def child() -> str:
    return where()[0]


def test_a_subflow_with_its_own_task_runner_runs_there(threads_client):
    outer, inner = parent_and_child.with_options(cluster=threads_client)()
    assert outer.startswith("inproc://")
    assert inner == "sync"


def test_a_sequential_runner_runs_in_the_flow_thread():
    @task
    def thread_name() -> str:
        return threading.current_thread().name

    @flow(task_runner=SequentialTaskRunner())
    def named() -> str:
        return thread_name()

    assert named() == threading.current_thread().name


def test_a_dask_task_runner_makes_a_cluster_per_flow_run_and_closes_it():
    runner = DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": 1,
            "threads_per_worker": 2,
            "processes": False,
            "dashboard_address": None,
        },
    )
    first = located.with_options(task_runner=runner)(2)
    second = located.with_options(task_runner=runner)(2)
    assert {threads for _, threads in first + second} == {2}
    assert first[0][0] != second[0][0]  # a new cluster, with a new worker, for each run


@flow
def on_workers() -> int:
    from distributed import get_client

    return len(get_client().scheduler_info()["workers"])


def test_adapt_kwargs_scale_the_cluster_made_for_the_run():
    runner = DaskTaskRunner(
        cluster_class=LocalCluster,
        cluster_kwargs={"n_workers": 0, "processes": False, "dashboard_address": None},
        adapt_kwargs={"minimum": 1, "maximum": 2},
    )
    assert located.with_options(task_runner=runner)(2)[0][0].startswith("inproc://")


def test_the_cluster_config_may_name_a_cluster_class_made_per_flow_run():
    """SPEC §3: ``daskflow.cluster: {class, kwargs, adapt}``, as in the config file."""
    mapping = {
        "class": "distributed.LocalCluster",
        "kwargs": {"n_workers": 0, "processes": False, "dashboard_address": None},
        "adapt": {"minimum": 1, "maximum": 2},  # from 0 workers: only adapting makes one
    }
    with dask.config.set({"daskflow.cluster": mapping}):
        first = {address for address, _ in located(2)}
        second = {address for address, _ in located(2)}
    assert all(a.startswith("inproc://") for a in first | second)
    assert first.isdisjoint(second)  # each flow run had a cluster of its own
    # the same mapping given to the flow
    assert located.with_options(cluster=mapping)(1)[0][0].startswith("inproc://")


def test_a_cluster_mapping_with_an_unknown_key_is_one_clear_error():
    with pytest.raises(ConfigurationError, match="'workers'"):
        located.with_options(cluster={"class": "distributed.LocalCluster", "workers": 2})()


def test_a_dask_task_runner_takes_a_cluster_object_or_its_address(processes_client):
    address = processes_client.scheduler.address
    workers = set(processes_client.scheduler_info()["workers"])
    by_object = located.with_options(task_runner=DaskTaskRunner(cluster=processes_client.cluster))
    by_address = located.with_options(task_runner=DaskTaskRunner(address=address))
    assert {a for a, _ in by_object()} <= workers
    assert {a for a, _ in by_address()} <= workers


def test_task_runner_and_cluster_together_is_one_clear_error():
    with pytest.raises(ConfigurationError, match="either task_runner= or cluster="):

        @flow(cluster="sync", task_runner=ThreadPoolTaskRunner(max_workers=2))
        def both() -> None: ...


def test_with_options_replaces_one_by_the_other():
    threaded = located.with_options(task_runner=ThreadPoolTaskRunner(max_workers=2))
    assert threaded.with_options(cluster="sync")() == [("sync", 1)] * 4


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: DaskTaskRunner(cluster_class="no_such_module.Cluster"), "cluster_class"),
        (lambda: DaskTaskRunner(cluster_class="LocalCluster"), "dotted name"),
        (lambda: DaskTaskRunner(address="tcp://h:1", cluster_kwargs={"n": 1}), "address"),
        (lambda: ThreadPoolTaskRunner(max_workers=0), "max_workers"),
    ],
)
def test_bad_task_runner_arguments_are_refused_when_made(make, match):
    with pytest.raises(ConfigurationError, match=match):
        make()


def test_something_else_as_task_runner_is_refused():
    with pytest.raises(ConfigurationError, match="task_runner"):
        flow(task_runner="threads")(lambda: 1)

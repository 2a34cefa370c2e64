"""The attempt wrapper and the engine: timeouts, hooks, events, worker death."""

from __future__ import annotations

import threading

import dask
import pytest
from distributed import Client, LocalCluster

from daskflow import flow, task
from daskflow.errors import SerializationError
from daskflow.states import StateType
from tests.resources.tasks import always_die, count_attempt, die_once, inc


@task(timeout_seconds=0.2)
def blocks() -> str:
    threading.Event().wait(30)  # blocking code that cannot be interrupted
    return "late"


@task(retries=1, retry_on=KeyError)
def raises_value_error() -> None:
    raise ValueError("not retried: retry_on is KeyError")


def test_timeout_ends_a_blocking_attempt(cluster, observer):
    @flow(cluster=cluster)
    def f():
        return blocks()

    state = f(return_state=True)  # returns at the deadline, the thread blocks on
    assert state.type is StateType.FAILED
    assert state.error_type == "TaskRunTimeout"
    (run,) = observer.task_runs.values()
    assert run.state.type is StateType.TIMED_OUT


def test_retry_on_filters_exceptions(cluster, observer):
    @flow(cluster=cluster)
    def f():
        raises_value_error()

    state = f(return_state=True)
    assert state.error_type == "ValueError"
    (run,) = observer.task_runs.values()
    assert run.attempts == 1
    assert run.state.type is StateType.FAILED


calls: list[tuple[str, str, str]] = []


def record_hook(task_or_flow, run, state):
    calls.append((task_or_flow.name, run.name, state.type.value))


def broken_hook(task_or_flow, run, state):
    raise RuntimeError("a broken hook must not break the run")


@task(on_completion=[broken_hook, record_hook], on_failure=[record_hook])
def hooked(x: int) -> int:
    if x < 0:
        raise ValueError("negative")
    return x


def test_hooks_run_once_with_the_final_state(caplog):
    calls.clear()

    @flow(cluster="sync", on_failure=[record_hook])
    def f():
        hooked(1)
        hooked.submit(-1)

    state = f(return_state=True)
    assert state.is_failed()
    assert calls == [
        ("hooked", "hooked", "COMPLETED"),
        ("hooked", "hooked", "FAILED"),
        ("f", calls[-1][1], "FAILED"),
    ]
    assert "a broken hook" in caplog.text


@task
def makes_a_lock() -> object:
    return threading.Lock()


def test_unpicklable_result_names_the_task(processes_client):
    @flow(cluster=processes_client)
    def f() -> object:
        return makes_a_lock()

    with pytest.raises(SerializationError, match=r"makes_a_lock.*its result"):
        f()


def test_events_reach_observers_in_batches(cluster, observer):
    @flow(cluster=cluster)
    def f(n: int) -> int:
        return len(inc.map(range(n)).result())

    assert f(200) == 200
    runs = list(observer.task_runs.values())
    assert len(runs) == 200
    expected = [StateType.PENDING, StateType.RUNNING, StateType.COMPLETED]
    assert [r.state_types for r in runs if r.state_types != expected] == []
    if not isinstance(cluster, str):  # sync runs one task at a time, by design
        assert observer.batches < 200  # many transitions per batch, never one call each
        assert all(
            r.workers[0] is not None and r.workers[0].startswith(("tcp://", "inproc://"))
            for r in runs
        )


@pytest.fixture
def fragile_client():
    """Two worker processes that may die; config read by the scheduler at start."""
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 1}),
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client


def test_worker_death_is_rescheduled_then_crash(fragile_client, observer, tmp_path):
    @flow(cluster=fragile_client)
    def survives(folder: str) -> int:
        return die_once(folder)

    assert survives(str(tmp_path)) > 0
    (run,) = observer.task_runs.values()
    assert run.state.type is StateType.COMPLETED
    died = [t for t in run.transitions if t.details.get("worker_died")]
    assert len(died) == 1  # the attempt on the dead worker is recorded

    @flow(cluster=fragile_client)
    def crashes():
        return always_die.with_options(on_failure=[record_hook])()

    calls.clear()
    state = crashes(return_state=True)
    assert state.is_failed()
    crashed = [r for r in observer.task_runs.values() if r.task_name == "always_die"]
    assert crashed[0].state.type is StateType.CRASHED
    assert calls == [("always_die", "always_die", "CRASHED")]  # hooks once, on the client


def only_connection_errors(task_, run, state) -> bool:
    return state.error_type == "ConnectionError" and run.attempt < 3


@task(retries=5, retry_delay_seconds=0.001, retry_jitter_factor=20)
def jittery(folder: str) -> int:
    if count_attempt(folder, "jittery") < 4:
        raise ConnectionError("again")
    return 1


@task(retries=5, retry_condition_fn=only_connection_errors)
def conditional(folder: str) -> int:
    count_attempt(folder, "conditional")
    raise ConnectionError("always")


def test_jitter_and_retry_condition_fn(cluster, observer, tmp_path):
    @flow(cluster=cluster)
    def f(folder: str) -> None:
        jittery(folder)
        conditional.submit(folder).wait()

    f(str(tmp_path))
    runs = {r.task_name: r for r in observer.task_runs.values()}
    messages = [
        t.state.message for t in runs["jittery"].transitions if t.state.type is StateType.RETRYING
    ]
    delays = [float(m.rsplit("retrying in ", 1)[1].split()[0]) for m in messages]
    assert len(delays) == 3
    assert all(0.001 <= d <= 0.021 for d in delays)
    assert len(set(delays)) > 1  # jitter: random extra, not the same delay each time
    assert runs["conditional"].attempts == 3  # retry_condition_fn said no on attempt 3
    assert runs["conditional"].state.type is StateType.FAILED


class PickyError(Exception):
    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"{code}: {detail}")  # args differ from __init__'s: pickle fails


@task
def raises_picky() -> None:
    raise PickyError(7, "custom")


def test_errors_that_do_not_unpickle_still_arrive(cluster):
    @flow(cluster=cluster)
    def f() -> None:
        raises_picky()

    state = f(return_state=True)
    assert state.is_failed()
    # rebuilt without its constructor, also from a worker process: its own type and text
    with pytest.raises(PickyError, match=r"^7: custom$"):
        state.result()

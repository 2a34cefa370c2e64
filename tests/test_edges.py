"""Edges of errors and final states (SPEC §1, §12): what users catch and what is recorded.

- A task's exception reaches the caller as its own type, also from worker
  processes and when its constructor takes other arguments than its message.
- Every flow run ends in a final state, whatever is raised (``RecursionError``
  from deep subflow recursion, ``KeyboardInterrupt``, ``SystemExit``, a bare
  ``BaseException``), and the exception then reaches the caller as it was.
- A flow's ``timeout_seconds`` ends it TIMED_OUT, also while it waits on a task.
- ``allow_failure`` works in ``wait_for``; ``return_state=True`` never raises.
- Names longer than the store's columns are recorded, cut to fit.
"""

from __future__ import annotations

import sys
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path

import dask
import pytest

import daskflow
from daskflow import allow_failure, flow, task
from daskflow.errors import ClusterConnectionError, DaskflowError
from daskflow.observers.events import FlowRunCreated, StateChanged, TaskRunCreated, bus
from daskflow.states import State, StateType
from daskflow.store import SQLStore
from tests.resources.tasks import boom, inc
from tests.test_store import SQL_BACKENDS, backend_url

S = StateType


@pytest.fixture
def store_file(tmp_path: Path) -> Iterator[str]:
    """Record the test's runs in a SQLite file of its own."""
    path = str(tmp_path / "runs.db")
    with dask.config.set({"daskflow.store": path}):
        yield path


def recorded(store: str) -> list[daskflow.FlowRun]:
    bus.flush()
    return daskflow.runs(limit=None, store=store)


# -- exception types across processes -------------------------------------------------
class CodedError(Exception):
    """An exception whose constructor takes other arguments than its message."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


class KeywordError(Exception):
    def __init__(self, *, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@task
def raise_coded(code: int) -> None:
    raise CodedError(code, "bad input")


@task
def raise_keyword() -> None:
    raise KeywordError(reason="no way")


def test_an_exception_keeps_its_type_and_attributes(cluster):
    @flow(cluster=cluster)
    def called() -> None:
        raise_coded(7)

    @flow(cluster=cluster)
    def submitted() -> object:
        return raise_coded.submit(8)  # never looked at: the flow fails with it

    @flow(cluster=cluster)
    def looked_at() -> object:
        return raise_keyword.submit().result(raise_on_failure=False)

    with pytest.raises(CodedError) as info:
        called()
    assert (info.value.code, info.value.detail, str(info.value)) == (7, "bad input", "7: bad input")
    with pytest.raises(CodedError, match=r"^8: bad input$"):
        submitted()
    error = looked_at()
    assert isinstance(error, KeywordError)
    assert error.reason == "no way"
    state = called(return_state=True)
    assert state.error_type == "CodedError"
    assert isinstance(state.result(raise_on_failure=False), CodedError)


def test_an_exception_whose_class_the_client_cannot_import_names_it(processes_client, tmp_path):
    (tmp_path / "worker_only_errors.py").write_text("class WorkerOnlyError(Exception):\n    pass\n")

    @task
    def raise_worker_only(folder: str) -> None:
        sys.path.insert(0, folder)  # on the worker process only
        from worker_only_errors import WorkerOnlyError  # type: ignore[import-not-found]

        raise WorkerOnlyError("only the worker knows me")

    @flow(cluster=processes_client)
    def f(folder: str) -> None:
        raise_worker_only(folder)

    with pytest.raises(DaskflowError, match=r"^only the worker knows me$") as info:
        f(str(tmp_path))
    assert type(info.value).__name__ == "WorkerOnlyError"
    assert "worker_only_errors.WorkerOnlyError: only the worker knows me" in "".join(
        traceback.format_exception(info.value)
    )
    state = f(str(tmp_path), return_state=True)
    assert state.type is S.FAILED
    assert state.error_type == "WorkerOnlyError"


# -- every run ends in a final state -------------------------------------------------------
def test_deep_subflow_recursion_leaves_no_run_unfinished(cluster, store_file):
    @flow(cluster=cluster)
    def deep(n: int) -> int:
        return n if n == 0 else deep(n - 1)

    with pytest.raises(RecursionError):
        deep(2000)
    runs = recorded(store_file)
    assert len(runs) > 10
    assert {r.state.type for r in runs} == {S.FAILED}
    assert all(r.state.error_type == "RecursionError" for r in runs)
    assert deep(3) == 0  # and the process is fine afterwards


class Stop(BaseException):
    """A bare BaseException subclass: neither an Exception nor an interrupt."""


@pytest.mark.parametrize(
    ("raised", "final"),
    [(KeyboardInterrupt, S.CRASHED), (SystemExit, S.CRASHED), (Stop, S.FAILED)],
)
def test_a_flow_raising_a_base_exception_ends_final_and_reraises(
    cluster, store_file, raised, final
):
    @flow(cluster=cluster)
    def child() -> None:
        inc(1)
        raise raised("stop here")

    @flow(cluster=cluster)
    def parent() -> None:
        child()

    with pytest.raises(raised):
        parent()
    runs = recorded(store_file)
    assert [r.flow_name for r in runs] == ["child", "parent"]
    assert [r.state.type for r in runs] == [final, final]
    assert runs[0].state.error_type == raised.__name__
    assert [t.state.type for t in runs[0].task_runs] == [S.COMPLETED]


@pytest.mark.parametrize(
    ("raised", "final"),
    [(KeyboardInterrupt, S.CRASHED), (SystemExit, S.CRASHED), (Stop, S.FAILED)],
)
def test_a_task_raising_a_base_exception_ends_final(cluster, store_file, raised, final):
    @task(retries=2)
    def interrupted() -> None:
        raise raised("stop here")

    @flow(cluster=cluster)
    def f() -> None:
        interrupted()

    with pytest.raises(raised):
        f()
    (run,) = recorded(store_file)
    (task_run,) = run.task_runs
    assert (task_run.state.type, task_run.attempts) == (final, 1)  # never retried
    assert task_run.state.error_type == raised.__name__
    assert run.state.type is final
    # the worker thread that ran it lives on
    assert flow(cluster=cluster)(lambda: inc(inc(0)))() == 2


def test_an_interrupted_task_in_the_flows_thread_stops_the_flow(store_file, tmp_path):
    @task
    def interrupted() -> None:
        raise KeyboardInterrupt  # as Ctrl-C does while a task runs in the flow's thread

    @task
    def after() -> None:
        (tmp_path / "after").write_text("ran")

    @flow(cluster="sync")
    def f() -> None:
        interrupted.submit()
        after.submit()

    with pytest.raises(KeyboardInterrupt):
        f()
    assert not (tmp_path / "after").exists()
    (run,) = recorded(store_file)
    assert run.state.type is S.CRASHED
    assert [t.state.type for t in run.task_runs] == [S.CRASHED]


# -- a flow's timeout ----------------------------------------------------------------------
@task
def slow(seconds: float) -> float:
    threading.Event().wait(seconds)
    return seconds


def test_flow_timeout_while_waiting_on_a_task_is_timed_out(cluster):
    @flow(cluster=cluster, timeout_seconds=0.3)
    def one() -> float:
        return slow.submit(1.5).result()

    @flow(cluster=cluster, timeout_seconds=0.3)
    def many() -> list[float]:
        return slow.map([1.5, 1.5]).result()

    for f in (one, many, one, many, one, many):
        state = f(return_state=True)
        assert state.type is S.TIMED_OUT, state.message
        assert "timed out after 0.3 s" in state.message


# -- allow_failure in wait_for ------------------------------------------------------------------
def test_allow_failure_in_wait_for_lets_the_downstream_run(cluster):
    @flow(cluster=cluster)
    def f() -> tuple[int, list[int]]:
        bad = boom.submit(1)
        after = inc.submit(1, wait_for=[allow_failure(bad)])
        mapped = inc.map([1, 2], wait_for=[allow_failure(bad)])
        return after.result(), mapped.result()

    @flow(cluster=cluster)
    def blocked() -> object:
        bad = boom.submit(1)
        bad.wait()  # looked at: its failure alone does not fail the flow
        downstream = inc.submit(1, wait_for=[bad])
        downstream.wait()
        return downstream.state.type  # (a returned State would be the flow's own, as in Prefect)

    assert f() == (2, [2, 3])
    assert f(return_state=True).type is S.COMPLETED
    assert blocked() is S.UPSTREAM_FAILED


# -- return_state never raises ---------------------------------------------------------------------
def test_return_state_holds_an_unreachable_cluster(store_file):
    @flow
    def f() -> int:
        return 1

    unreachable = f.with_options(cluster="tcp://127.0.0.1:1")
    with dask.config.set({"daskflow.connect-timeout": "1s"}):
        state = unreachable(return_state=True)
        assert state.type is S.FAILED
        assert isinstance(state.result(raise_on_failure=False), ClusterConnectionError)
        with pytest.raises(ClusterConnectionError):
            unreachable()
    runs = recorded(store_file)
    assert [r.state.type for r in runs] == [S.FAILED, S.FAILED]
    assert runs[0].state.error_type == "ClusterConnectionError"
    assert "tcp://127.0.0.1:1" in (runs[0].state.error_message or "")


# -- names longer than the columns ---------------------------------------------------------------
@pytest.fixture(params=SQL_BACKENDS)
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with backend_url(request.param, tmp_path) as url:
        yield url


def test_names_longer_than_their_columns_are_recorded_cut(sql_url):
    long = "x" * 300
    named = task(name="t" * 300, task_run_name="r" * 300)(lambda: 1)
    with dask.config.set({"daskflow.store": sql_url}):

        @flow(name="f" * 300, flow_run_name=long, cluster="sync")
        def f() -> int:
            return named()

        assert f() == 1
        (run,) = recorded(sql_url)
    assert (run.flow_name, run.name, run.state.type) == ("f" * 255, "x" * 255, S.COMPLETED)
    (task_run,) = run.task_runs
    assert (task_run.task_name, task_run.name) == ("t" * 255, "r" * 255)


def test_long_worker_and_error_type_are_recorded_cut(sql_url):
    store = SQLStore(sql_url)
    try:
        failed = State(S.FAILED, 2.0, "failed", "E" * 300, "boom", "trace")
        store.write(
            [
                FlowRunCreated("f1", "etl", "etl-1", {}, None, 1.0),
                TaskRunCreated("t1", "f1", "inc", "inc-0", 0, frozenset(), ("inc", 0), 1.0),
                StateChanged("f1", None, State(S.RUNNING, 1.0)),
                StateChanged("f1", "t1", State(S.RUNNING, 1.5), 1, "w" * 300),
            ]
        )
        store.write(
            [
                StateChanged("f1", "t1", failed, 1, "w" * 300),
                StateChanged("f1", None, failed),
            ]
        )
        (task_run,) = store.list_task_runs("f1")
        assert (task_run.state, task_run.worker, task_run.error_type) == (
            S.FAILED,
            "w" * 255,
            "E" * 255,
        )
        flow_run = store.get_flow_run("f1")
        assert flow_run is not None
        assert flow_run.error_type == "E" * 255
    finally:
        store.close()

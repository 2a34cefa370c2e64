"""Cancelling flow runs on a 2-process cluster: from this process and from another one.

Tasks here wait on a file the test creates at the end ("release") rather than
sleeping: Python cannot interrupt a running task, so a cancelled task still
holds its worker thread until it returns, and the shared cluster must be free
for the next test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import daskflow
from daskflow import flow, task, unmapped
from daskflow.errors import CancelError, CancelledRunError
from daskflow.observers.events import bus
from daskflow.states import StateType
from tests.conftest import poll_for


def hold(folder: str, i: int) -> int:
    """Mark the start, then wait (at most 60 s) until the test releases the runs."""
    Path(folder, f"started-{i}").touch()
    deadline = time.time() + 60
    while not Path(folder, "release").exists() and time.time() < deadline:
        time.sleep(0.02)
    return i


# long runs that must hold worker threads side by side: never in one chunk
blocking = task(hold, name="blocking", batch=False)


@task
def touch(folder: str, name: str) -> None:
    Path(folder, name).touch()


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    (tmp_path / "release").touch()  # free the cluster's threads for the next test


def started(folder: Path) -> int:
    return len(list(folder.glob("started-*")))


class Running:
    """A flow call on a thread of its own; ``.id`` once the store has the run."""

    def __init__(self, fn: Any, **kwargs: Any) -> None:
        self.state: Any = None
        self.thread = threading.Thread(target=self._run, args=(fn, kwargs), daemon=True)
        self.thread.start()
        self.flow_name = fn.name

    def _run(self, fn: Any, kwargs: dict[str, Any]) -> None:
        self.state = fn(**kwargs, return_state=True)

    def find_id(self) -> str:
        found: list[str] = []

        def recorded() -> bool:
            runs = daskflow.runs(flow=self.flow_name, state="RUNNING", limit=1)
            found.extend(r.id for r in runs)
            return bool(runs)

        poll_for(recorded, timeout=30)
        return found[0]

    def join(self) -> Any:
        self.thread.join(60)
        assert not self.thread.is_alive(), "the flow run did not end"
        return self.state


def cancel_once_started(running: Running, folder: Path, count: int) -> str:
    """Ask to cancel the run once ``count`` of its tasks started; its id."""
    flow_run_id = running.find_id()
    poll_for(lambda: started(folder) == count, timeout=30)
    daskflow.get_run(flow_run_id).cancel(wait=None)
    return flow_run_id


def test_cancel_ends_running_and_waiting_task_runs_and_calls_the_hooks(processes_client, folder):
    called: list[tuple[str, StateType]] = []

    @flow(
        cluster=processes_client,
        on_cancellation=[lambda f, run, state: called.append(("cancel", state.type))],
        on_failure=[lambda f, run, state: called.append(("failure", state.type))],
    )
    def six_blocking(folder: str) -> int:
        return sum(blocking.map(unmapped(folder), range(6)).result())

    running = Running(six_blocking, folder=str(folder))
    flow_run_id = running.find_id()
    poll_for(lambda: started(folder) == 4, timeout=30)  # 2 workers x 2 threads busy, 2 waiting

    after = daskflow.get_run(flow_run_id).cancel()
    state = running.join()

    assert state.type is StateType.CANCELLED
    assert isinstance(state.exception(), CancelledRunError)
    assert after.state.type is StateType.CANCELLED
    assert after.cancel_requested is not None
    assert called == [("cancel", StateType.CANCELLED)]
    bus.flush()
    task_runs = daskflow.get_run(flow_run_id).task_runs
    assert [t.state.type for t in task_runs] == [StateType.CANCELLED] * 6
    assert started(folder) == 4  # the two waiting runs never started


def hold_last(folder: str, i: int) -> int:
    """Return at once, except element 3, which holds (in the same chunk)."""
    return hold(folder, i) if i == 3 else i


def test_elements_that_ended_before_the_cancel_keep_their_state(processes_client, folder):
    in_one_chunk = task(hold_last, name="in-one-chunk", batch=4)
    futures: list[Any] = []

    @flow(cluster=processes_client)
    def one_chunk(folder: str) -> int:
        futures.extend(in_one_chunk.map(unmapped(folder), range(4)))
        return sum(f.result() for f in futures)

    running = Running(one_chunk, folder=str(folder))
    flow_run_id = cancel_once_started(running, folder, 1)

    assert running.join().type is StateType.CANCELLED
    expected = [StateType.COMPLETED] * 3 + [StateType.CANCELLED]
    assert [f.state.type for f in futures] == expected  # what the flow's futures say
    bus.flush()
    assert [t.state.type for t in daskflow.get_run(flow_run_id).task_runs] == expected


def test_runs_cancel_from_another_process(processes_client, folder, tmp_path_factory):
    @flow(cluster=processes_client)
    def two_blocking(folder: str) -> int:
        return sum(blocking.map(unmapped(folder), range(2)).result())

    running = Running(two_blocking, folder=str(folder))
    flow_run_id = running.find_id()
    poll_for(lambda: started(folder) == 2, timeout=30)

    cancelled = subprocess.run(
        [sys.executable, "-m", "daskflow.cli", "runs", "cancel", flow_run_id[:8]],
        capture_output=True,
        text=True,
        env={**os.environ, "DASKFLOW__PROGRESS": "false"},
        timeout=60,
        check=False,
    )
    assert cancelled.returncode == 0, cancelled.stdout + cancelled.stderr
    assert "CANCELLED" in cancelled.stdout
    assert running.join().type is StateType.CANCELLED

    again = subprocess.run(
        [sys.executable, "-m", "daskflow.cli", "runs", "cancel", flow_run_id],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert again.returncode == 2
    assert "already ended (CANCELLED)" in again.stderr


def test_a_run_that_ended_cannot_be_cancelled(processes_client):
    @flow(name="cancel-quick", cluster=processes_client)
    def quick() -> int:
        return 1

    state = quick(return_state=True)
    bus.flush()
    [run] = daskflow.runs(flow="cancel-quick", limit=1)
    assert state.is_completed()
    with pytest.raises(CancelError, match="already ended \\(COMPLETED\\)"):
        run.cancel()
    assert run.refresh().state.type is StateType.COMPLETED  # nothing recorded changed


def test_cancelling_a_parent_cancels_its_subflow(processes_client, folder):
    @flow(name="cancel-child", cluster=processes_client)
    def child(folder: str) -> int:
        return blocking(folder, 0)

    @flow(name="cancel-parent", cluster=processes_client)
    def parent(folder: str) -> int:
        return child(folder) + 1

    running = Running(parent, folder=str(folder))
    flow_run_id = cancel_once_started(running, folder, 1)

    assert running.join().type is StateType.CANCELLED
    bus.flush()
    [sub] = [r for r in daskflow.runs(flow="cancel-child", limit=5) if r.parent_id == flow_run_id]
    assert sub.state.type is StateType.CANCELLED
    assert [t.state.type for t in sub.task_runs] == [StateType.CANCELLED]


def test_a_run_waiting_to_retry_is_cancelled_without_retrying(processes_client):
    attempts: list[int] = []

    @flow(name="cancel-flaky", cluster=processes_client, retries=3, retry_delay_seconds=100)
    def flaky() -> None:
        attempts.append(1)
        raise RuntimeError("boom")

    running = Running(flaky)

    def retrying() -> list[daskflow.FlowRun]:
        return daskflow.runs(flow="cancel-flaky", state="RETRYING", limit=1)

    poll_for(lambda: bool(retrying()), timeout=30)
    flow_run_id = retrying()[0].id
    daskflow.get_run(flow_run_id).cancel(wait=None)

    state = running.join()
    assert state.type is StateType.CANCELLED
    assert attempts == [1]


def test_task_runs_created_after_cancellation_never_run(processes_client, folder):
    @flow(cluster=processes_client)
    def stubborn(folder: str) -> str:
        try:
            blocking(folder, 0)
        except CancelledRunError:
            touch(folder, "after")  # a new task run after the cancellation
        return "done"

    running = Running(stubborn, folder=str(folder))
    flow_run_id = cancel_once_started(running, folder, 1)

    assert running.join().type is StateType.CANCELLED
    bus.flush()
    runs = {t.task_name: t.state.type for t in daskflow.get_run(flow_run_id).task_runs}
    assert runs == {"blocking": StateType.CANCELLED, "touch": StateType.CANCELLED}
    assert not (folder / "after").exists()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("where", ["sync", "processes"])
def test_cancelling_kills_a_running_shell_command(where, request, tmp_path):
    from daskflow.shell import shell_task

    cluster = "sync" if where == "sync" else request.getfixturevalue("processes_client")
    pidfile = tmp_path / "pid"
    long_command = shell_task("echo $$ > {pidfile}; exec sleep 60", name="long-command")

    @flow(name=f"cancel-shell-{where}", cluster=cluster)
    def runs_a_command(pidfile: str) -> str:
        return long_command(pidfile=pidfile)

    running = Running(runs_a_command, pidfile=str(pidfile))
    flow_run_id = running.find_id()
    poll_for(lambda: pidfile.exists() and pidfile.read_text().strip() != "", timeout=30)
    pid = int(pidfile.read_text())
    daskflow.get_run(flow_run_id).cancel(wait=None)

    assert running.join().type is StateType.CANCELLED
    poll_for(lambda: not alive(pid), timeout=30)  # the sleep was killed, not left for 60 s
    bus.flush()
    [task_run] = daskflow.get_run(flow_run_id).task_runs
    assert task_run.state.type is StateType.CANCELLED

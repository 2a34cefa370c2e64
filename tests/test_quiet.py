"""Ctrl-C, cancellation and exit say nothing from Dask (SPEC §11), as a user sees them.

Every test runs the ``daskflow`` command (or a script) as a real subprocess
in a session of its own, stops it as a user would (Ctrl-C to its whole
process group, as a terminal sends it: the worker processes of the embedded
cluster get it too; ``daskflow runs cancel``; a cluster that goes away), and
reads its stderr: daskflow's own lines, not one line from distributed,
tornado or Bokeh, and no traceback.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import daskflow
from daskflow.states import StateType
from tests.conftest import poll_for

SERVED = Path(__file__).parent / "resources" / "served.py"

#: A record of Dask's loggers (their default format: "time - name - LEVEL - message").
DASK_LINE = re.compile(r" - (distributed|dask(?!flow)|tornado|bokeh)[\w.]* - ", re.IGNORECASE)
NOISE = (
    "Traceback",
    "Exception ignored",
    "KeyboardInterrupt",
    "CommClosedError",
    "Async instruction",
    "Failed to reconnect",
    "still alive after",
)


def assert_quiet(stderr: str) -> None:
    """Nothing in ``stderr`` but daskflow's own lines."""
    assert not DASK_LINE.search(stderr), stderr
    for word in NOISE:
        assert word not in stderr, stderr


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DASKFLOW_STORE": str(tmp_path / "runs.db"),
        "DASKFLOW_RESULTS": str(tmp_path / "results"),
        "DASKFLOW__PROGRESS": "false",
    }


@pytest.fixture
def held(tmp_path: Path) -> Path:
    folder = tmp_path / "held"
    folder.mkdir()
    return folder


def start(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """``python -m daskflow.cli ARGS`` in a process group of its own (as a terminal's job)."""
    return subprocess.Popen(
        [sys.executable, "-m", "daskflow.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )


def ctrl_c(process: subprocess.Popen[str]) -> tuple[int, str]:
    """Ctrl-C in the terminal: SIGINT to the whole group; the exit code and stderr."""
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    return process.returncode, stderr


def runs(env: dict[str, str], state: str | None = None) -> list[daskflow.FlowRun]:
    return daskflow.runs(state=state, limit=None, store=env["DASKFLOW_STORE"])


def wait_until_started(held: Path, process: subprocess.Popen[str], env: dict[str, str]) -> None:
    """Until the held task runs in a worker and its flow run is recorded RUNNING."""

    def started() -> bool:
        assert process.poll() is None, process.communicate()
        return any(held.glob("started-*")) and any(
            run.state.type is StateType.RUNNING for run in runs(env)
        )

    poll_for(started, timeout=90, interval=0.1)


@pytest.fixture
def stop(held: Path) -> Iterator[list[subprocess.Popen[str]]]:
    """Processes to kill (and the held task to release) if a test fails midway."""
    started: list[subprocess.Popen[str]] = []
    yield started
    (held / "release").touch()
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()


def test_ctrl_c_stops_serve_and_its_running_run_without_a_word_from_dask(env, held, stop):
    served = start("serve", f"{SERVED}:held", "--interval", "1h", "-p", f"folder={held}", env=env)
    stop.append(served)
    wait_until_started(held, served, env)

    os.killpg(served.pid, signal.SIGINT)
    # then Ctrl-C again while the process closes its cluster at exit (the held task
    # still runs in a worker thread: closing waits for the nanny to kill that worker)
    assert served.stderr is not None
    seen = []
    watchdog = threading.Timer(120, served.kill)  # a serve that hangs fails, not blocks
    watchdog.start()
    for line in served.stderr:
        seen.append(line)
        if "stopped serving held" in line:
            break
    watchdog.cancel()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(served.pid, signal.SIGINT)
    _, rest = served.communicate(timeout=120)
    stderr = "".join(seen) + rest

    assert served.returncode == 0, stderr
    assert_quiet(stderr)
    recorded = runs(env)
    assert recorded
    assert {run.state.type for run in recorded} == {StateType.CANCELLED}


def test_a_second_ctrl_c_stops_serve_at_once_and_records_its_runs(env, held, stop):
    args = ("--interval", "1h", "-p", f"folder={held}", "--cluster", "sync")
    served = start("serve", f"{SERVED}:held", *args, env=env)
    stop.append(served)
    wait_until_started(held, served, env)

    os.killpg(served.pid, signal.SIGINT)
    # serve stopped (the next slot is recorded CANCELLED) and waits for the run, which
    # cannot stop: its task runs in serve's own thread until released
    poll_for(lambda: len(runs(env, "CANCELLED")) == 1, timeout=60, interval=0.1)
    code, stderr = ctrl_c(served)

    assert code == 0, stderr
    assert_quiet(stderr)
    assert "Aborted" not in stderr
    assert "did not stop before the second Ctrl-C" in stderr
    assert {run.state.type for run in runs(env)} == {StateType.CANCELLED}


def test_ctrl_c_stops_daskflow_run_without_a_word_from_dask(env, held, stop):
    running = start("run", f"{SERVED}:held", "-p", f"folder={held}", env=env)
    stop.append(running)
    wait_until_started(held, running, env)

    code, stderr = ctrl_c(running)

    assert_quiet(stderr)
    assert code == 130, stderr  # interrupted, as shells count it
    [run] = runs(env)
    assert run.state.type is StateType.CANCELLED  # stopped by its user: not crashed
    assert "Cancelling the flow run" in stderr


def test_runs_cancel_of_a_running_run_says_nothing_from_dask(env, held, stop):
    running = start("run", f"{SERVED}:held", "-p", f"folder={held}", env=env)
    stop.append(running)
    wait_until_started(held, running, env)
    [run] = runs(env)

    cancel = subprocess.run(
        [sys.executable, "-m", "daskflow.cli", "runs", "cancel", run.id],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    _, stderr = running.communicate(timeout=120)

    assert cancel.returncode == 0, cancel.stderr
    assert_quiet(cancel.stderr)
    assert running.returncode == 1, stderr  # the run did not complete
    assert_quiet(stderr)
    assert "CANCELLED" in stderr
    [run] = runs(env)
    assert run.state.type is StateType.CANCELLED


CLUSTER = """
import sys
from distributed import LocalCluster

with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:
    print(cluster.scheduler_address, flush=True)
    sys.stdin.read()  # until the test closes stdin
"""

SCRIPT = """
import sys, time
from pathlib import Path
from daskflow import flow, task
from daskflow.engine import cluster

@task
def one() -> int:
    return 1

@flow
def on_address() -> int:
    return one()

address, folder, wait = sys.argv[1:]
print(on_address.with_options(cluster=address)(), flush=True)
Path(folder, "ran").touch()
while not Path(folder, "closed").exists():
    time.sleep(0.05)
if wait == "gave-up":  # until the client gave up reconnecting (it closes itself)
    while cluster._clients[address].status != "closed":
        time.sleep(0.05)
"""


@pytest.mark.parametrize("wait", ["exit-at-once", "gave-up"])
def test_an_address_cluster_closing_after_the_run_says_nothing_from_dask(
    env, held, stop, tmp_path, wait
):
    cluster = subprocess.Popen(
        [sys.executable, "-c", CLUSTER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    stop.append(cluster)
    assert cluster.stdout is not None
    assert cluster.stdin is not None
    address = cluster.stdout.readline().strip()
    script = tmp_path / "on_address.py"
    script.write_text(SCRIPT)
    process = subprocess.Popen(
        [sys.executable, str(script), address, str(held), wait],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**env, "DASKFLOW__CONNECT_TIMEOUT": "1s"},  # it gives up reconnecting soon
        start_new_session=True,
    )
    stop.append(process)
    poll_for(lambda: (held / "ran").exists() or process.poll() is not None, timeout=90)

    cluster.stdin.close()  # the cluster closes while the flow's process goes on
    assert cluster.wait(timeout=60) == 0
    (held / "closed").touch()
    stdout, stderr = process.communicate(timeout=120)

    assert process.returncode == 0, stderr
    assert stdout.strip() == "1"
    assert_quiet(stderr)
    [run] = runs(env)
    assert run.state.type is StateType.COMPLETED

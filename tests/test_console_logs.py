"""Run log lines on the console while a flow runs, wherever its top-level run starts.

A script run with ``python script.py``, ``daskflow run``, ``daskflow serve``
(real subprocesses on a store and results folder of the test's own) and a
notebook cell (a real kernel, via ``nbclient``) each print every log record of
the run — the flow's, a task's (on a worker process), a ``log_prints`` print,
a retry — exactly once. The tracker counts retries from a real run's events,
and the views show them; with the terminal view live, log lines print through
its console, above the bars.
"""

from __future__ import annotations

import io
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dask
import pytest
from rich.console import Console

import daskflow
from daskflow import flow
from daskflow.errors import ConfigurationError
from daskflow.observers.events import (
    Event,
    FlowRunCreated,
    LogEmitted,
    Observer,
    StateChanged,
    TaskRunCreated,
    bus,
)
from daskflow.progress import ConsoleLogs, RunTracker, console_level, notebook, show_run, terminal
from daskflow.states import State, StateType
from tests.conftest import poll_for
from tests.resources.tasks import fails_twice, inc

#: A flow file: its task logs, prints (log_prints) and fails its first attempt (retries=1).
FLOW_FILE = """
import sys
from pathlib import Path

from daskflow import flow, get_run_logger, task


@task(retries=1, retry_delay_seconds=0, log_prints=True)
def flaky(folder: str) -> str:
    marker = Path(folder) / "attempted"
    if not marker.exists():
        marker.write_text("x")
        get_run_logger().info("task logs on its first attempt")
        print("task prints on its first attempt")
        raise ConnectionError("first try fails")
    return "ok"


@flow
def child(folder: str) -> str:
    get_run_logger().info("subflow says hello")
    return "child"


@flow
def main_flow(folder: str) -> str:
    get_run_logger().warning("flow warns once")
    return flaky(folder) + child(folder)
"""

SCRIPT_MAIN = """

if __name__ == "__main__":
    print("result:", main_flow(sys.argv[1]))
"""

#: Each line the run prints, as fragments of it: the flow's own record, a task's (on a
#: worker), a print (log_prints), the retry, a subflow's record.
EXPECTED = [
    ("| WARNING | Flow run 'main_flow-", "' - flow warns once"),
    ("| INFO    | Task run 'flaky' - task logs on its first attempt",),
    ("| INFO    | Task run 'flaky' - task prints on its first attempt",),
    (
        "| WARNING | Task run 'flaky' - attempt 1 of 2 failed "
        "(ConnectionError: first try fails); retrying in 0 s",
    ),
    ("| INFO    | Flow run 'child-", "' - subflow says hello"),
]


def _env(tmp_path: Path, **more: str) -> dict[str, str]:
    return {
        **os.environ,
        "DASKFLOW_STORE": str(tmp_path / "runs.db"),
        "DASKFLOW_RESULTS": str(tmp_path / "results"),
        "DASKFLOW__PROGRESS": "false",
        **more,
    }


def _python(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    folder = tmp_path / "work"
    folder.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_env(tmp_path, **env),
        timeout=180,
        check=False,
    )


def _count(text: str, *fragments: str) -> int:
    """Lines of ``text`` holding every fragment."""
    return sum(all(f in line for f in fragments) for line in text.splitlines())


def _assert_each_once(stderr: str) -> None:
    for fragments in EXPECTED:
        assert _count(stderr, *fragments) == 1, f"{fragments!r} in:\n{stderr}"
        assert _count(stderr, fragments[-1]) == 1, f"{fragments!r} in:\n{stderr}"


def test_a_script_prints_each_log_line_print_and_retry_once(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(FLOW_FILE + SCRIPT_MAIN)
    result = _python(tmp_path, str(script), "work")  # the default (local) cluster
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "result: okchild"
    _assert_each_once(result.stderr)


@pytest.mark.parametrize("cluster", [None, "sync"])
def test_daskflow_run_prints_each_once(tmp_path, cluster):
    (tmp_path / "flows.py").write_text(FLOW_FILE)
    extra = ["--cluster", cluster] if cluster else []
    result = _python(
        tmp_path, "-m", "daskflow.cli", "run", "flows.py:main_flow", "-p", "folder=work", *extra
    )
    assert result.returncode == 0, result.stderr
    _assert_each_once(result.stderr)


def test_a_sync_script_prints_each_once(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(
        FLOW_FILE + SCRIPT_MAIN.replace("main_flow(", "main_flow.with_options(cluster='sync')(")
    )
    result = _python(tmp_path, str(script), "work")
    assert result.returncode == 0, result.stderr
    _assert_each_once(result.stderr)


def test_console_level_off_prints_no_run_log_line(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(FLOW_FILE + SCRIPT_MAIN)
    (tmp_path / "flows.py").write_text(FLOW_FILE)
    quiet = {"DASKFLOW__LOGGING__CONSOLE_LEVEL": "OFF"}
    ran = _python(tmp_path, str(script), "work", **quiet)
    (tmp_path / "work" / "attempted").unlink()
    cli = _python(
        tmp_path, "-m", "daskflow.cli", "run", "flows.py:main_flow", "-p", "folder=work", **quiet
    )
    for result in (ran, cli):
        assert result.returncode == 0, result.stderr
        assert " | " not in result.stderr, result.stderr
        assert "first try fails" not in result.stderr


def test_console_level_warning_prints_only_warnings(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(FLOW_FILE + SCRIPT_MAIN)
    result = _python(tmp_path, str(script), "work", DASKFLOW__LOGGING__CONSOLE_LEVEL="warning")
    assert result.returncode == 0, result.stderr
    assert _count(result.stderr, "| WARNING |") == 2, result.stderr  # the flow's, the retry
    assert "| INFO    |" not in result.stderr


def test_console_level_values():
    with dask.config.set({"daskflow.logging.console-level": "off"}):
        assert console_level() is None
    with dask.config.set({"daskflow.logging.console-level": "debug"}):
        assert console_level() == logging.DEBUG
    with (
        dask.config.set({"daskflow.logging.console-level": "loud"}),
        pytest.raises(ConfigurationError, match="console-level"),
    ):
        console_level()


def test_daskflow_serve_prints_each_runs_lines_once(tmp_path):
    (tmp_path / "served.py").write_text(
        textwrap.dedent(
            """
            from daskflow import flow, get_run_logger, task

            @task
            def tock() -> int:
                get_run_logger().info("tock from a task on a worker")
                return 1

            @flow
            def ticking() -> int:
                get_run_logger().info("tick from the served flow")
                return tock()
            """
        )
    )
    env = _env(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "daskflow.cli", "serve", "served.py:ticking", "--interval", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    store = env["DASKFLOW_STORE"]
    try:
        poll_for(
            lambda: len(daskflow.runs(state="COMPLETED", store=store)) >= 2,
            timeout=90,
            interval=0.1,
        )
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert "serving flow ticking every 1s" in stderr  # serve's own line, still on stderr
    runs = daskflow.runs(state="COMPLETED", store=store)
    assert len(runs) >= 2
    for run in runs:
        assert _count(stderr, f"Flow run {run.name!r} - tick from the served flow") == 1, stderr
        assert _count(stderr, f"flow run {run.id} started (attempt 1)") == 1, stderr
    started = [r for r in daskflow.runs(store=store) if r.start_time is not None]
    tocks = _count(stderr, "| INFO    | Task run 'tock' - tock from a task on a worker")
    assert len(runs) <= tocks <= len(started), stderr


def test_a_notebook_cell_shows_the_runs_lines_under_it(tmp_path, monkeypatch, kernel):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    for name, value in _env(tmp_path).items():
        if name.startswith("DASKFLOW"):
            monkeypatch.setenv(name, value)
    (tmp_path / "work").mkdir()
    book = nbformat.v4.new_notebook()
    book.cells = [
        nbformat.v4.new_code_cell(FLOW_FILE),
        nbformat.v4.new_code_cell("main_flow.with_options(cluster='sync')('work')"),
        nbformat.v4.new_code_cell("print('third cell')"),
    ]
    nbclient.NotebookClient(
        book,
        kernel_name=kernel,
        timeout=120,
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()

    def stderr_of(cell: Any) -> str:
        return "".join(
            o.get("text", "")
            for o in cell.outputs
            if o.get("output_type") == "stream" and o.get("name") == "stderr"
        )

    _assert_each_once(stderr_of(book.cells[1]))
    assert stderr_of(book.cells[2]) == ""


# -- retries in the progress model and views ----------------------------------------


class Recorder(Observer):
    """Keeps every event the bus delivers."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def on_events(self, events: Sequence[Event], **kwargs: Any) -> None:
        self.events.extend(events)


@pytest.mark.parametrize("where", ["sync", "threads"])
def test_the_tracker_counts_retries_of_a_real_run(where, request, tmp_path):
    cluster = "sync" if where == "sync" else request.getfixturevalue("threads_client")

    @flow(name="retried")
    def retried(folder: str) -> int:
        fails_twice(folder)  # RETRYING twice, then COMPLETED
        return inc(1)

    recorder = bus.register(Recorder())
    try:
        assert retried.with_options(cluster=cluster)(str(tmp_path)) == 2
    finally:
        bus.unregister(recorder)  # flushes: every event is in
    (created,) = [e for e in recorder.events if isinstance(e, FlowRunCreated)]
    tracker = RunTracker(created.flow_run_id, created.flow_name)
    tracker.on_events(recorder.events)
    tracker.on_events(recorder.events)  # a batch delivered twice counts once
    snapshot = tracker.snapshot()
    by_name = {t.name: t for t in snapshot.tasks}
    assert by_name["fails_twice"].retried == 2
    assert by_name["inc"].retried == 0
    assert snapshot.totals.retried == 2
    assert by_name["fails_twice"].describe() == "1 done / 0 failed / 0 running of 1, 2 retries"
    assert by_name["inc"].describe() == "1 done / 0 failed / 0 running of 1"

    out = io.StringIO()
    Console(file=out, width=120, color_system=None).print(terminal.render_summary(snapshot))
    header = next(line for line in out.getvalue().splitlines() if "task" in line)
    assert [c.strip() for c in header.split("┃")[1:-1]] == [
        "task",
        "completed",
        "failed",
        "retries",
        "total",
    ]
    rows = {
        cells[0]: cells
        for line in out.getvalue().splitlines()
        if len(cells := [c.strip() for c in line.split("│")[1:-1]]) == 5
    }
    assert rows["fails_twice"] == ["fails_twice", "1", "0", "2", "1"]
    assert rows["inc"] == ["inc", "1", "0", "0", "1"]
    assert "2 retries" in notebook.render_live(snapshot)
    html = notebook.render_summary(snapshot)
    assert "retries</th>" in html
    assert re.search(r"fails_twice</td>(<td[^>]*>[^<]*</td>){2}<td[^>]*>2</td>", html), html


def test_no_retries_no_retries_column():
    tracker = RunTracker("f", "etl")
    tracker.on_events(
        [
            TaskRunCreated("t", "f", "load", "load", None, frozenset(), None, 0.0),
            StateChanged("f", "t", State(StateType.COMPLETED)),
        ]
    )
    out = io.StringIO()
    Console(file=out, width=120).print(terminal.render_summary(tracker.snapshot()))
    assert "retries" not in out.getvalue()
    assert "retries" not in notebook.render_summary(tracker.snapshot())


# -- log lines above the live terminal view -----------------------------------------


def test_log_lines_print_through_the_live_console_then_the_summary():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=200, color_system=None)
    now = time.time()
    with dask.config.set({"daskflow.progress": True}), show_run("f1", "etl", console=console):
        bus.publish(
            [
                FlowRunCreated("f1", "etl", "etl-f1", {}, None, now),
                TaskRunCreated("t1", "f1", "load", "load-0", None, frozenset(), None, now),
                LogEmitted("f1", "t1", now, logging.INFO, "daskflow.runs.task_run", "[b]x[/b]"),
                LogEmitted("f1", None, now, logging.DEBUG, "daskflow.runs.flow_run", "hidden"),
                StateChanged("f1", None, State(StateType.COMPLETED)),
            ]
        )
        bus.publish([LogEmitted("other", None, now, logging.INFO, "x", "another run's line")])
    text = out.getvalue()
    assert _count(text, "| INFO    | Task run 'load-0' - [b]x[/b]") == 1, text  # no markup
    assert "hidden" not in text
    assert "another run's line" not in text
    assert text.index("[b]x[/b]") < text.index("┏")  # before the summary table
    assert not [o for o in bus._observers if isinstance(o, ConsoleLogs | RunTracker)]


def test_without_a_view_log_lines_go_to_stderr(capsys):
    now = time.time()
    with dask.config.set({"daskflow.progress": False}), show_run("f2", "etl"):
        bus.publish(
            [
                FlowRunCreated("f2", "etl", "etl-f2", {}, None, now),
                FlowRunCreated("s2", "sub", "sub-s2", {}, "f2", now),
                LogEmitted("s2", None, now, logging.WARNING, "daskflow.runs.flow_run", "deep"),
            ]
        )
    captured = capsys.readouterr()
    assert _count(captured.err, "| WARNING | Flow run 'sub-s2' - deep") == 1, captured.err
    assert captured.out == ""
    assert not [o for o in bus._observers if isinstance(o, ConsoleLogs)]

"""A failure reads like the user's own code: their files and lines, none of daskflow's frames."""

from __future__ import annotations

import os
import subprocess
import traceback
from pathlib import Path

import dask
import pytest

from daskflow import flow
from daskflow.errors import UpstreamFailedError
from tests.console import run_python
from tests.resources.tasks import boom, inc

PACKAGE = str(Path(__file__).resolve().parent.parent / "src" / "daskflow")

SCRIPT = """\
from daskflow import flow, task


def parse(text):
    return int(text)


@task
def load(x: str) -> int:
    return parse(x)


@task
def double(v: int) -> int:
    return 2 * v


@flow
def pipeline(items: list[str]) -> list[int]:
    loaded = load.map(items)
    return double.map(loaded).result()


pipeline(["1", "two", "3"])
"""


def run(folder: Path, *command: str, **env: str) -> subprocess.CompletedProcess[str]:
    quiet = {"DASKFLOW__PROGRESS": "false", "DASKFLOW__LOGGING__CONSOLE_LEVEL": "OFF"}
    return run_python(folder, *command, **{**quiet, **env})


def frame_lines(stderr: str) -> list[str]:
    return [line.strip() for line in stderr.splitlines() if line.strip().startswith("File ")]


@pytest.mark.parametrize("cluster", ["local", "sync"])
def test_a_script_s_failure_shows_the_failing_task_s_frames_in_the_script(tmp_path, cluster):
    (tmp_path / "etl.py").write_text(SCRIPT)

    result = run(tmp_path, "etl.py", DASKFLOW__CLUSTER=cluster)

    assert result.returncode == 1
    script = str(tmp_path / "etl.py")
    # the root failure first, in the script's own functions (sent to the workers by
    # value, whose code cloudpickle renames "<dynamic-code>"), with their source lines
    assert frame_lines(result.stderr) == [
        f'File "{script}", line 10, in load',
        f'File "{script}", line 5, in parse',
        f'File "{script}", line 24, in <module>',
        f'File "{script}", line 21, in pipeline',
    ]
    assert "    return int(text)\n" in result.stderr
    assert "ValueError: invalid literal for int() with base 10: 'two'" in result.stderr
    assert "direct cause of the following exception" in result.stderr
    assert (
        result.stderr.rstrip()
        .splitlines()[-1]
        .startswith("daskflow.errors.UpstreamFailedError: task 'double-1' did not run")
    )
    assert "<dynamic-code>" not in result.stderr


def test_daskflow_run_prints_the_user_s_frames_of_a_failed_run(tmp_path):
    (tmp_path / "etl.py").write_text(SCRIPT.replace('pipeline(["1", "two", "3"])\n', ""))

    result = run(tmp_path, "-m", "daskflow.cli", "run", "etl.py:pipeline", "-p", 'items=["two"]')

    assert result.returncode == 1
    script = str(tmp_path / "etl.py")
    assert frame_lines(result.stderr) == [
        f'File "{script}", line 10, in load',
        f'File "{script}", line 5, in parse',
        f'File "{script}", line 21, in pipeline',
    ]
    assert "    return parse(x)\n" in result.stderr


def test_the_raised_exception_and_the_recorded_text_hold_no_daskflow_frame(processes_client):
    @flow(cluster=processes_client)
    def fails() -> None:
        boom(inc(1))

    with pytest.raises(RuntimeError) as caught:
        fails()

    files = [frame.filename for frame in traceback.extract_tb(caught.value.__traceback__)]
    assert files[0] == __file__  # pytest's call of the flow, then the flow function
    assert not [f for f in files if f.startswith(PACKAGE)]
    assert files[-1].endswith(os.path.join("tests", "resources", "tasks.py"))  # raise in boom

    state = fails(return_state=True)
    assert PACKAGE not in state.traceback
    assert "tests/resources/tasks.py" in state.traceback


def test_upstream_failed_is_caused_by_the_root_failure(processes_client):
    @flow(cluster=processes_client)
    def chained() -> int:
        return inc.submit(inc.submit(boom.submit())).result()

    with pytest.raises(UpstreamFailedError) as caught:
        chained()

    root = caught.value.__cause__
    assert isinstance(root, RuntimeError)  # boom's own error, with its frame on the worker
    last = traceback.extract_tb(root.__traceback__)[-1]
    assert (last.name, Path(last.filename).name) == ("boom", "tasks.py")


def test_internal_frames_config_shows_daskflow_s_frames(processes_client):
    @flow(cluster=processes_client)
    def fails() -> None:
        boom()

    with dask.config.set({"daskflow.internal-frames": True}), pytest.raises(RuntimeError) as caught:
        fails()

    files = [frame.filename for frame in traceback.extract_tb(caught.value.__traceback__)]
    assert [f for f in files if f.startswith(PACKAGE)]

"""Shell tasks: real commands on every cluster, quoted, logged, failed, retried, killed."""

from __future__ import annotations

import inspect
import logging
import os
import pickle
import threading
from pathlib import Path

import pytest
from dask.base import tokenize

from daskflow import flow, unmapped
from daskflow.errors import ConfigurationError, ShellCommandError
from daskflow.shell import shell_task
from daskflow.states import StateType
from tests.conftest import poll_for

echo = shell_task("echo {text}")
pair = shell_task("printf '%s|%s\\n' {} {}", name="pair")
chatty = shell_task("echo out 1; echo err 1 >&2; echo out 2; echo err 2 >&2")
failing = shell_task("echo first words >&2; echo last words >&2; exit 3")
flaky = shell_task(
    "if [ -e {marker} ]; then echo second time lucky; else touch {marker}; exit 1; fi",
    retries=1,
)
slow = shell_task(
    "echo $$ > {shell_pid}; sleep 30 & echo $! > {child_pid}; wait; echo late",
    timeout_seconds=0.5,
)
count = shell_task("wc -l < {folder}/{name}", task_run_name="count-{name}")


def _exists(pid: int) -> bool:
    """True while a process (a zombie included) has this pid."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its parent counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


# -- the task, without a cluster ---------------------------------------------------------------
def test_fields_make_the_signature_and_the_name():
    with pytest.raises(ConfigurationError, match="not both"):
        shell_task("cp {} {0}")
    copy = shell_task("cp {0} {1} {dest}")
    assert str(inspect.signature(copy.fn)) == "(arg0, arg1, /, *, dest) -> str"
    assert copy.name == "shell-cp"
    assert shell_task("FOO=1 /usr/bin/python -m x").name == "shell-python"
    assert shell_task("{} --version").name == "shell"
    assert shell_task("wc -l {path}", name="count").name == "count"


def test_bad_commands_and_calls_are_named():
    with pytest.raises(ConfigurationError, match=r"\{print \$1\}"):
        shell_task("awk '{print $1}' {path}")
    with pytest.raises(ConfigurationError, match="command"):
        shell_task("echo {")
    assert shell_task("echo {text} | awk '{{print $1}}'")(text="a b") == "a"
    with pytest.raises(TypeError, match=r"echo \{text\}.*'text'"):
        echo()


def test_plain_call_outside_a_flow_runs_the_command(tmp_path):
    assert echo(text="hello world") == "hello world"
    assert pair("a b", "c") == "a b|c"
    assert shell_task("printf 'x\\n\\n\\n'")() == "x"  # trailing newlines go, like $(...)


def test_tail_of_stderr_in_the_error():
    with pytest.raises(ShellCommandError) as info:
        shell_task("seq 1 30 >&2; exit 4")()
    error = info.value
    assert error.exit_code == 4
    assert error.stderr_tail.splitlines() == [str(i) for i in range(11, 31)]
    assert "exit code 4" in str(error)
    assert isinstance(pickle.loads(pickle.dumps(error)), ShellCommandError)


def test_pickles_and_tokenizes_as_its_command():
    copied = pickle.loads(pickle.dumps(count))
    assert copied.name == count.name
    assert copied.options == count.options
    assert inspect.signature(copied.fn) == inspect.signature(count.fn)
    assert tokenize(copied.fn) == tokenize(count.fn) != tokenize(echo.fn)


# -- in flows, on every cluster ----------------------------------------------------------------
def test_returns_stdout_and_quotes_arguments(cluster, tmp_path):
    injected = tmp_path / "injected"
    sneaky = f"a  b; touch {injected}; $(touch {injected}) `touch {injected}`"

    @flow(cluster=cluster)
    def f() -> tuple[str, str]:
        return echo(text=sneaky), pair.submit("x y", "it's").result()

    assert f() == (sneaky, "x y|it's")
    assert not injected.exists()


def test_output_lines_are_run_logs(cluster, observer):
    @flow(cluster=cluster)
    def f() -> str:
        return chatty()

    assert f() == "out 1\nout 2"
    (run,) = observer.task_runs.values()
    levels = {log.message: log.level for log in observer.logs if log.task_run_id == run.id}
    assert levels == {
        "out 1": logging.INFO,
        "out 2": logging.INFO,
        "err 1": logging.WARNING,
        "err 2": logging.WARNING,
    }


def test_lines_are_logged_while_the_command_runs(cluster, observer, caplog, tmp_path):
    caplog.set_level(logging.INFO, logger="daskflow.runs")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    waits = shell_task("echo started; read answer < {fifo}; echo got $answer", timeout_seconds=60)

    @flow(cluster=cluster)
    def f() -> str:
        return waits(fifo=str(fifo))

    result: list[str] = []
    runner = threading.Thread(target=lambda: result.append(f()))
    runner.start()

    def started() -> bool:  # seen by the observer, or by this process's handlers under "sync"
        # (the sync backend hands a task run's events to observers when the run ends)
        return any(log.message == "started" for log in observer.logs) or any(
            record.getMessage() == "started" for record in caplog.records
        )

    try:  # the command waits on the fifo until its first line has been logged
        poll_for(started)
    finally:
        with open(fifo, "w") as pipe:
            pipe.write("go\n")
        runner.join()
    assert result == ["started\ngot go"]


def test_nonzero_exit_fails_with_code_and_stderr(cluster, observer):
    @flow(cluster=cluster)
    def f() -> str:
        return failing()

    state = f(return_state=True)
    assert state.type is StateType.FAILED
    assert state.error_type == "ShellCommandError"
    assert "exit code 3" in state.error_message
    assert "last words" in state.error_message
    with pytest.raises(ShellCommandError) as info:
        state.result()
    assert info.value.exit_code == 3
    (run,) = observer.task_runs.values()
    assert run.state.type is StateType.FAILED


def test_retries_run_the_command_again(cluster, observer, tmp_path):
    @flow(cluster=cluster)
    def f() -> str:
        return flaky(marker=str(tmp_path / "marker"))

    assert f() == "second time lucky"
    (run,) = observer.task_runs.values()
    assert run.attempts == 2
    assert run.state.type is StateType.COMPLETED


def test_timeout_kills_the_command_and_its_children(cluster, observer, tmp_path):
    shell_pid, child_pid = tmp_path / "shell.pid", tmp_path / "child.pid"

    @flow(cluster=cluster)
    def f() -> str:
        return slow(shell_pid=str(shell_pid), child_pid=str(child_pid))

    state = f(return_state=True)
    assert state.error_type == "TaskRunTimeout"
    (run,) = observer.task_runs.values()
    assert run.state.type is StateType.TIMED_OUT
    pids = [int(path.read_text()) for path in (shell_pid, child_pid)]
    poll_for(lambda: not any(_alive(pid) for pid in pids))
    # the shell is reaped, not left a zombie (by the attempt's thread, which goes on
    # after the run was recorded TIMED_OUT: poll)
    poll_for(lambda: not _exists(pids[0]))
    assert not [log for log in observer.logs if log.message == "late"]


def test_map_over_inputs(cluster, observer, tmp_path):
    for n in (1, 2, 3):
        (tmp_path / f"{n} lines.txt").write_text("x\n" * n)
    names = [f"{n} lines.txt" for n in (1, 2, 3)]

    @flow(cluster=cluster)
    def f() -> list[int]:
        return [int(n) for n in count.map(folder=unmapped(str(tmp_path)), name=names).result()]

    assert f() == [1, 2, 3]
    assert sorted(r.name for r in observer.task_runs.values()) == [f"count-{n}" for n in names]


def test_env_and_cwd(cluster, tmp_path):
    greet = shell_task(
        'echo "$GREETING"; pwd; [ -n "$PATH" ] && echo path kept',
        env={"GREETING": "hi there"},
        cwd=tmp_path,
    )

    @flow(cluster=cluster)
    def f() -> str:
        return greet()

    assert f().splitlines() == ["hi there", str(tmp_path.resolve()), "path kept"]

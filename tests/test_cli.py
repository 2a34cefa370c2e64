"""The ``daskflow`` command, run as a real subprocess against a real SQLite store.

Flows come from ``tests/resources/flows.py`` and run with ``--cluster sync``
(one run uses the default local cluster, with a real worker process). A
module-scoped store holds a few recorded runs that the ``runs`` commands read.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from daskflow import __version__

FLOWS = Path(__file__).parent / "resources" / "flows.py"
RUN_ID = re.compile(r"started: id ([0-9a-f]{32})")


def daskflow(
    *args: str, store: Path | None, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m daskflow.cli [--store STORE] ARGS``, output captured."""
    command = [sys.executable, "-m", "daskflow.cli"]
    if store is not None:
        command += ["--store", str(store)]
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "DASKFLOW__PROGRESS": "false", **(env or {})},
        timeout=120,
        check=False,
    )


def run_id(result: subprocess.CompletedProcess[str]) -> str:
    found = RUN_ID.search(result.stdout + result.stderr)
    assert found, result.stdout + result.stderr
    return found.group(1)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A store with four runs: hello (completed), fails, noisy (logs), big (121 task runs)."""
    folder = tmp_path_factory.mktemp("cli")
    store = folder / "runs.db"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return daskflow("run", *args, "--cluster", "sync", store=store, cwd=folder)

    results = {
        "hello": run(f"{FLOWS}:hello", "-p", "name=cli"),
        "fails": run(f"{FLOWS}:fails", "-p", "reason=on purpose"),
        "noisy": run(f"{FLOWS}:noisy"),
        "big": run(f"{FLOWS}:scaled-sum", "-p", f"xs={list(range(120))}", "--json"),
    }
    return {"store": store, "folder": folder, "results": results}


def read(recorded: dict[str, object], *args: str) -> subprocess.CompletedProcess[str]:
    return daskflow(*args, store=recorded["store"], cwd=recorded["folder"])  # type: ignore[arg-type]


def result_of(recorded: dict[str, object], name: str) -> subprocess.CompletedProcess[str]:
    return recorded["results"][name]  # type: ignore[index]


def test_version_and_help_everywhere(tmp_path):
    version = daskflow("--version", store=None, cwd=tmp_path)
    assert version.returncode == 0
    assert version.stdout.strip() == f"daskflow {__version__}"
    for command in (
        [],
        ["run"],
        ["runs"],
        ["dashboard"],
        ["serve"],
        *(["runs", c] for c in ("list", "show", "logs", "retry", "cancel")),
    ):
        shown = daskflow(*command, "--help", store=None, cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
        assert "Usage: daskflow" in shown.stdout


def test_the_console_script_is_installed(tmp_path):
    script = Path(sys.executable).parent / "daskflow"
    if not script.exists():
        pytest.skip("daskflow is not installed as a console script next to this Python")
    result = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"daskflow {__version__}"


def test_run_prints_the_run_id_then_the_result(recorded):
    result = result_of(recorded, "hello")
    assert result.returncode == 0, result.stderr
    first_line = result.stdout.splitlines()[0]
    assert RUN_ID.search(first_line), result.stdout
    assert "Result: 'hello cli'" in result.stdout
    assert "COMPLETED" in result.stdout

    shown = read(recorded, "runs", "show", run_id(result), "--json")
    assert shown.returncode == 0, shown.stderr
    run = json.loads(shown.stdout)
    assert run["id"] == run_id(result)
    assert run["flow_name"] == "hello"
    assert run["state"] == "COMPLETED"
    assert run["parameters"] == {"name": "cli"}
    assert [t["task_name"] for t in run["task_runs"]] == ["greet"]


def test_run_reads_values_as_json_and_prints_json(recorded):
    result = result_of(recorded, "big")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)  # --json: stdout is the document only
    assert document["state"] == "COMPLETED"
    assert document["flow_name"] == "scaled-sum"
    assert document["result"] == float(sum(range(120)))
    assert document["id"] == run_id(result)  # the start line went to stderr


def test_a_failed_flow_run_exits_1_and_prints_the_error(recorded):
    result = result_of(recorded, "fails")
    assert result.returncode == 1
    assert RUN_ID.search(result.stdout)
    assert "FAILED" in result.stderr
    assert "ValueError: exploded: on purpose" in result.stderr

    shown = read(recorded, "runs", "show", run_id(result)[:8])
    assert shown.returncode == 0, shown.stderr
    assert "FAILED" in shown.stdout
    assert "explode" in shown.stdout
    assert "ValueError: exploded: on purpose" in shown.stdout


def test_runs_list_as_a_table_and_as_json(recorded):
    table = read(recorded, "runs", "list")
    assert table.returncode == 0, table.stderr
    for name in ("hello", "fails", "noisy", "scaled-sum"):
        assert name in table.stdout
    assert run_id(result_of(recorded, "hello"))[:8] in table.stdout

    listed = json.loads(read(recorded, "runs", "list", "--json").stdout)
    assert [r["flow_name"] for r in listed] == ["scaled-sum", "noisy", "fails", "hello"]
    assert listed[-1]["id"] == run_id(result_of(recorded, "hello"))
    assert listed[-1]["start_time"].endswith("+00:00")
    assert listed[-1]["duration"] >= 0

    only_hello = json.loads(read(recorded, "runs", "list", "--flow", "hello", "--json").stdout)
    assert [r["flow_name"] for r in only_hello] == ["hello"]
    failed = json.loads(read(recorded, "runs", "list", "--state", "failed", "--json").stdout)
    assert [r["flow_name"] for r in failed] == ["fails"]
    assert failed[0]["error_type"] == "ValueError"
    newest = json.loads(read(recorded, "runs", "list", "--limit", "1", "--json").stdout)
    assert [r["flow_name"] for r in newest] == ["scaled-sum"]

    empty = read(recorded, "runs", "list", "--flow", "nothing-like-this")
    assert empty.returncode == 0
    assert "No flow runs recorded" in empty.stdout


def test_runs_show_of_a_big_run_counts_per_task_and_lists_a_few(recorded):
    big = run_id(result_of(recorded, "big"))
    document = json.loads(read(recorded, "runs", "show", big, "--limit", "5", "--json").stdout)
    assert document["task_runs_total"] == 121
    assert document["task_counts"] == {"scale": {"COMPLETED": 120}, "total": {"COMPLETED": 1}}
    assert len(document["task_runs"]) == 5
    assert {t["state"] for t in document["task_runs"]} == {"COMPLETED"}
    assert document["parameters"]["xs"][:3] == [0, 1, 2]

    shown = read(recorded, "runs", "show", big[:10], "--limit", "5")
    assert shown.returncode == 0, shown.stderr
    assert "Task runs per task (121)" in shown.stdout
    assert "First 5 of 121 task runs" in shown.stdout
    assert "scale-0" in shown.stdout
    assert "scale-119" not in shown.stdout


def test_runs_logs_as_lines_and_as_json(recorded):
    noisy = run_id(result_of(recorded, "noisy"))
    lines = read(recorded, "runs", "logs", noisy)
    assert lines.returncode == 0, lines.stderr
    assert "noisy flow with 3 tasks" in lines.stdout
    assert "WARNING" in lines.stdout
    for i in range(3):
        assert f"chatty says {i}" in lines.stdout

    records = json.loads(read(recorded, "runs", "logs", noisy, "--task", "chatty", "--json").stdout)
    assert sorted(r["message"] for r in records) == [f"chatty says {i}" for i in range(3)]
    assert {r["task_name"] for r in records} == {"chatty"}
    assert {r["level"] for r in records} == {"INFO"}
    assert {r["flow_run_id"] for r in records} == {noisy}

    hello = run_id(result_of(recorded, "hello"))
    greet_logs = json.loads(read(recorded, "runs", "logs", hello, "--json").stdout)
    assert "greeting cli" in [r["message"] for r in greet_logs]

    every = json.loads(read(recorded, "runs", "logs", noisy, "--json").stdout)
    last_two = json.loads(read(recorded, "runs", "logs", noisy, "--tail", "2", "--json").stdout)
    first_two = json.loads(read(recorded, "runs", "logs", noisy, "--limit", "2", "--json").stdout)
    assert len(every) > 2
    assert last_two == every[-2:]
    assert first_two == every[:2]


def test_an_unknown_run_id_exits_2(recorded):
    for command in ("show", "logs"):
        result = read(recorded, "runs", command, "feedc0de")
        assert result.returncode == 2
        assert "no flow run with id 'feedc0de'" in result.stderr


def test_an_unknown_flow_exits_2_and_lists_the_flows_in_the_file(tmp_path):
    result = daskflow("run", f"{FLOWS}:nope", store=tmp_path / "s.db", cwd=tmp_path)
    assert result.returncode == 2
    assert "no flow named 'nope'" in result.stderr
    for name in ("hello", "scaled_sum (named 'scaled-sum')", "fails", "noisy"):
        assert name in result.stderr

    not_a_flow = daskflow("run", f"{FLOWS}:not_a_flow", store=tmp_path / "s.db", cwd=tmp_path)
    assert not_a_flow.returncode == 2
    assert "'not_a_flow'" in not_a_flow.stderr
    assert "not a flow" in not_a_flow.stderr

    unnamed = daskflow("run", str(FLOWS), store=tmp_path / "s.db", cwd=tmp_path)
    assert unnamed.returncode == 2
    assert "holds 6 flows" in unnamed.stderr


def test_an_unknown_file_exits_2_and_says_where_it_looked(tmp_path):
    result = daskflow("run", "missing.py:main", store=tmp_path / "s.db", cwd=tmp_path)
    assert result.returncode == 2
    assert "no flow file 'missing.py'" in result.stderr
    assert str(tmp_path / "missing.py") in result.stderr


def test_bad_parameters_exit_2(tmp_path):
    store = tmp_path / "s.db"
    no_equals = daskflow("run", f"{FLOWS}:hello", "-p", "name", store=store, cwd=tmp_path)
    assert no_equals.returncode == 2
    assert "expected KEY=VALUE" in no_equals.stderr

    wrong_type = daskflow(
        "run", f"{FLOWS}:scaled-sum", "-p", "xs=[1]", "-p", "factor=lots", "--cluster", "sync",
        store=store, cwd=tmp_path,
    )  # fmt: skip
    assert wrong_type.returncode == 2
    assert "parameter 'factor'" in wrong_type.stderr
    assert not RUN_ID.search(wrong_type.stdout)


def test_run_on_the_default_local_cluster(tmp_path):
    store = tmp_path / "local.db"
    local = {"DASK_DASKFLOW__LOCAL_CLUSTER": '{"n_workers": 1, "threads_per_worker": 2}'}
    result = daskflow(
        "run", f"{FLOWS}:scaled-sum", "-p", "xs=[1, 2, 3]", "-p", "factor=2",
        store=store, cwd=tmp_path, env=local,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Result: 12.0" in result.stdout

    shown = json.loads(
        daskflow("runs", "show", run_id(result), "--json", store=store, cwd=tmp_path).stdout
    )
    assert shown["state"] == "COMPLETED"
    assert len(shown["task_runs"]) == 4
    assert all(t["worker"].startswith("tcp://") for t in shown["task_runs"])


def test_parameters_are_json_when_they_parse_else_strings():
    from daskflow.cli.run import parse_parameters

    assert parse_parameters(
        ["n=3", "xs=[1, 2]", "cfg={\"a\": null}", "day=2024-01-01", "flag=true", "s=\"7\"", "e="]
    ) == {"n": 3, "xs": [1, 2], "cfg": {"a": None}, "day": "2024-01-01", "flag": True, "s": "7",
          "e": ""}  # fmt: skip
    assert parse_parameters(["eq=a=b"]) == {"eq": "a=b"}


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("flows.py:etl", ("flows.py", "etl")),
        ("dir/flows.py:etl-daily", ("dir/flows.py", "etl-daily")),
        ("flows.py", ("flows.py", "")),
        ("C:\\work\\flows.py", ("C:\\work\\flows.py", "")),
        ("C:\\work\\flows.py:etl", ("C:\\work\\flows.py", "etl")),
    ],
)
def test_targets_split_into_file_and_flow(target, expected):
    from daskflow.cli.run import _split_target

    assert _split_target(target) == expected


def test_a_syntax_error_in_the_flow_file_is_bad_usage_naming_the_line(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("from daskflow import flow\n\n@flow\ndef f(:\n    pass\n")
    result = daskflow("run", "broken.py:f", store=tmp_path / "runs.db", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "broken.py, line 4: SyntaxError: invalid syntax" in result.stderr
    assert "def f(:" in result.stderr


def test_an_ambiguous_id_prefix_lists_the_runs_it_matches(tmp_path: Path) -> None:
    import time

    from daskflow.observers.events import FlowRunCreated
    from daskflow.store.sql import SQLStore

    store = tmp_path / "runs.db"
    recorded = SQLStore(str(store))
    ids = ["abcdef01" + "0" * 24, "abcdef02" + "0" * 24]
    recorded.write([FlowRunCreated(i, "f", f"f-{i[:8]}", {}, None, time.time()) for i in ids])
    recorded.close()
    result = daskflow("runs", "show", "abcdef", store=store, cwd=tmp_path)
    assert result.returncode == 2
    assert "ambiguous run id 'abcdef'" in result.stderr
    assert all(i[:12] in result.stderr for i in ids)
    assert daskflow("runs", "show", "abcdef01", store=store, cwd=tmp_path).returncode == 0


def test_runs_list_keeps_ids_states_and_times_whole_beside_a_long_flow_name(
    tmp_path: Path,
) -> None:
    name = "a-very-long-flow-name-for-the-nightly-feature-scoring-pipeline-of-the-marketing-team"
    (tmp_path / "long.py").write_text(
        f"from daskflow import flow\n\n@flow(name={name!r})\ndef f() -> int:\n    return 1\n"
    )
    store = tmp_path / "runs.db"
    started = daskflow("run", "long.py:f", "--cluster", "sync", store=store, cwd=tmp_path)
    listed = daskflow("runs", "list", store=store, cwd=tmp_path, env={"COLUMNS": "80"})
    assert listed.returncode == 0, listed.stderr
    assert run_id(started)[:8] in listed.stdout
    assert "COMPLETED" in listed.stdout
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", listed.stdout), listed.stdout
    assert max(len(line) for line in listed.stdout.splitlines()) <= 80


@pytest.mark.parametrize("cluster", ["local", "sync"])
def test_run_prints_every_worker_s_log_lines_once_as_they_arrive(
    tmp_path: Path, cluster: str
) -> None:
    store = tmp_path / "runs.db"
    args = ("run", f"{FLOWS}:noisy", "-p", "n=2", "--cluster", cluster)
    result = daskflow(*args, store=store, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for line in (
        "| WARNING | Flow run 'noisy-",  # the flow function's own record
        "| INFO    | Task run 'chatty-0' - chatty says 0",  # a print in a task on a worker
        "| INFO    | Task run 'chatty-1' - chatty says 1",
    ):
        assert result.stderr.count(line) == 1, result.stderr
    quiet = daskflow(
        *args, store=store, cwd=tmp_path, env={"DASKFLOW__LOGGING__CONSOLE_LEVEL": "OFF"}
    )
    assert quiet.returncode == 0, quiet.stderr
    assert "chatty says" not in quiet.stderr

"""Resuming a failed flow run: ``Flow.resume`` and ``daskflow runs retry`` (SPEC §5).

The flow: two steps whose results are stored (``persist_result=True`` on
the flow), then a gate that fails while a marker file exists (the CLI test
runs the same flow from ``tests/resources/flows.py``). Resuming after the
gate opens must not run the steps again, and a result that was never stored
is computed again.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daskflow import flow, get_run, runs, task
from daskflow.errors import ResumeError, RunNotFoundError
from daskflow.states import StateType
from tests.test_cli import daskflow

FLOWS = Path(__file__).parent / "resources" / "flows.py"


@task
def step(folder: str, name: str, value: int) -> int:
    with (Path(folder) / name).open("a") as f:
        f.write("x")
    return value


@task
def gate(folder: str, x: int) -> int:
    if (Path(folder) / "closed").exists():
        raise RuntimeError("the gate is closed")
    return x * 10


@flow(name="resumable", persist_result=True)
def resumable(folder: str) -> int:
    a = step(folder, "a", 1)
    b = step(folder, "b", 2)
    return gate(folder, a + b)


def count(folder: Path, name: str) -> int:
    path = folder / name
    return len(path.read_text()) if path.exists() else 0


def latest(name: str):
    return runs(flow=name, limit=1)[0]


@pytest.mark.parametrize("where", ["sync", "processes"])
def test_resume_reuses_stored_results_and_runs_the_rest(tmp_path, where, request):
    cluster = "sync" if where == "sync" else request.getfixturevalue("processes_client")
    f = resumable.with_options(result_storage=str(tmp_path / "results"), cluster=cluster)
    (tmp_path / "closed").touch()
    failed = f(str(tmp_path), return_state=True)
    assert failed.type is StateType.FAILED
    old = latest("resumable")

    (tmp_path / "closed").unlink()
    assert f.resume(old.id) == 30
    new = latest("resumable")
    assert new.id != old.id
    assert new.resumed_from == old.id
    assert new.parameters == old.parameters
    states = [(r.task_name, r.state.type) for r in new.task_runs]
    assert states == [
        ("step", StateType.CACHED),
        ("step", StateType.CACHED),
        ("gate", StateType.COMPLETED),
    ]
    assert count(tmp_path, "a") == count(tmp_path, "b") == 1  # not run again
    assert get_run(old.id).state.type is StateType.FAILED  # history is not rewritten


@task
def unstored(folder: str) -> int:
    with (Path(folder) / "unstored").open("a") as f:
        f.write("x")
    return 5


@task
def fail_once(folder: str, x: int) -> int:
    marker = Path(folder) / "failed-once"
    if not marker.exists():
        marker.touch()
        raise RuntimeError("first time")
    return x + 1


def test_a_result_that_was_not_stored_is_computed_again(tmp_path):
    @flow(name="partly-stored", cluster="sync")
    def partly(folder: str) -> int:
        return fail_once(folder, unstored(folder))

    assert partly(str(tmp_path), return_state=True).type is StateType.FAILED
    assert partly.resume(latest("partly-stored").id) == 6
    assert count(tmp_path, "unstored") == 2


def test_what_cannot_be_resumed_is_refused(tmp_path):
    @flow(name="fine", cluster="sync")
    def fine() -> int:
        return 1

    @flow(name="other", cluster="sync")
    def other() -> int:
        return 2

    fine()
    done = latest("fine")
    with pytest.raises(ResumeError, match="it completed"):
        fine.resume(done.id)
    with pytest.raises(ResumeError, match="a run of flow 'fine', not 'other'"):
        other.resume(done.id)
    with pytest.raises(RunNotFoundError):
        fine.resume("0123456789abcdef")


def test_cli_runs_retry(tmp_path):
    store = tmp_path / "runs.db"
    results = tmp_path / "results"
    env = {"DASKFLOW_RESULTS": str(results)}
    (tmp_path / "closed").touch()
    failed = daskflow(
        "run", f"{FLOWS}:resumable", "-p", f"folder={tmp_path}", "--cluster", "sync",
        store=store, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert failed.returncode == 1
    old_id = failed.stdout.split("started: id ")[1].split()[0]

    refused = daskflow("runs", "retry", old_id, store=store, cwd=tmp_path, env=env)
    assert refused.returncode == 1  # the gate is still closed: the new run fails too
    (tmp_path / "closed").unlink()
    retried = daskflow(
        "runs", "retry", old_id, "--cluster", "sync", "--json", store=store, cwd=tmp_path, env=env
    )
    assert retried.returncode == 0, retried.stderr
    assert "Note:" not in retried.stderr  # its results were stored: no hint
    assert '"result": 30' in retried.stdout
    assert count(tmp_path, "a") == count(tmp_path, "b") == 1
    new_id = json.loads(retried.stdout)["id"]
    shown = daskflow("runs", "show", new_id, "--json", store=store, cwd=tmp_path, env=env)
    assert json.loads(shown.stdout)["resumed_from"] == old_id
    shown = daskflow("runs", "show", new_id, store=store, cwd=tmp_path, env=env)
    assert f"resumed from  {old_id}" in shown.stdout

    unknown = daskflow("runs", "retry", "feedc0de", store=store, cwd=tmp_path, env=env)
    assert unknown.returncode == 2
    assert "no flow run with id 'feedc0de'" in unknown.stderr


@task
def open_gate_after_first_try(folder: str, x: int) -> int:
    """Fails while the gate is closed, and opens it: the flow's retry gets through."""
    closed = Path(folder) / "closed"
    if closed.exists():
        closed.unlink()
        raise RuntimeError("the gate was closed")
    return x * 10


@flow(name="retried", persist_result=True, retries=1)
def retried(folder: str) -> int:
    a = step(folder, "a", 1)
    b = step(folder, "b", 2)
    return open_gate_after_first_try(folder, a + b)


@pytest.mark.parametrize("where", ["sync", "processes"])
def test_a_flow_retry_reuses_the_results_its_failed_attempt_stored(tmp_path, where, request):
    cluster = "sync" if where == "sync" else request.getfixturevalue("processes_client")
    f = retried.with_options(result_storage=str(tmp_path / "results"), cluster=cluster)
    (tmp_path / "closed").touch()

    assert f(str(tmp_path)) == 30
    assert count(tmp_path, "a") == count(tmp_path, "b") == 1  # the retry did not run them

    run = latest("retried")
    assert run.state.type is StateType.COMPLETED
    by_name: dict[str, list[StateType]] = {}
    for task_run in run.task_runs:
        by_name.setdefault(task_run.task_name, []).append(task_run.state.type)
    assert by_name == {
        "step": [StateType.COMPLETED] * 2 + [StateType.CACHED] * 2,
        "open_gate_after_first_try": [StateType.FAILED, StateType.COMPLETED],
    }


def test_without_stored_results_a_flow_retry_runs_everything_again(tmp_path):
    f = retried.with_options(persist_result=False, cluster="sync")
    (tmp_path / "closed").touch()
    assert f(str(tmp_path)) == 30
    assert count(tmp_path, "a") == count(tmp_path, "b") == 2


def test_cli_runs_retry_says_when_nothing_can_be_reused(tmp_path):
    store = tmp_path / "runs.db"
    (tmp_path / "closed").touch()
    failed = daskflow(
        "run", f"{FLOWS}:unstored", "-p", f"folder={tmp_path}", "--cluster", "sync",
        store=store, cwd=tmp_path,
    )  # fmt: skip
    assert failed.returncode == 1
    old_id = failed.stdout.split("started: id ")[1].split()[0]
    (tmp_path / "closed").unlink()
    retried = daskflow("runs", "retry", old_id, "--cluster", "sync", store=store, cwd=tmp_path)
    assert retried.returncode == 0, retried.stderr
    assert "none of the 2 task runs that completed" in retried.stderr
    assert "persist_result=True" in retried.stderr
    assert count(tmp_path, "a") == count(tmp_path, "b") == 2  # both ran again, as said

"""Results as in Prefect 3: the default cache policy and ``result_storage_key``.

``persist_result=True`` with no cache option keys on ``INPUTS + TASK_SOURCE
+ RUN_ID``: the same call again in one flow run is CACHED, a new flow run
runs it again. ``result_storage_key`` names the stored file from a template;
a later run with the same key reads it back unless ``cache_policy=NONE``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from daskflow import flow, runs, task
from daskflow.cache_policies import DEFAULT, INPUTS, NONE, RUN_ID, TASK_SOURCE
from daskflow.errors import ConfigurationError
from daskflow.states import StateType
from tests.resources.tasks import count_attempt


@task(persist_result=True)
def stored_square(folder: str, x: int) -> int:
    count_attempt(folder, f"square-{x}")
    return x * x


@task(result_storage_key="hello-{parameters[name]}.pickle")
def hello(folder: str, name: str = "world") -> str:
    count_attempt(folder, f"hello-{name}")
    return f"hello {name}"


@task(result_storage_key="{flow_run.name}/{task_run.task_name}-{parameters[x]}.pkl")
def per_flow_run(x: int) -> int:
    return x + 1


@task(result_storage_key="../{parameters[x]}.pkl")
def escapes(x: int) -> int:
    return x


def attempts(folder: Path, name: str) -> int:
    path = folder / name
    return len(path.read_text()) if path.exists() else 0


def latest(f) -> object:
    return runs(flow=f.name, limit=1)[0]


def test_the_default_policy_is_prefects():
    assert DEFAULT == INPUTS + TASK_SOURCE + RUN_ID


def test_persist_result_alone_caches_the_same_call_within_one_flow_run(cluster, tmp_path):
    @flow(cluster=cluster, result_storage=str(tmp_path / "results"))
    def f(folder: str) -> list:
        first = stored_square(folder, 3)
        again = stored_square(folder, 3, return_state=True)
        other = stored_square(folder, 4)
        return [first, again.type, again.result(), other]

    assert f(str(tmp_path)) == [9, StateType.CACHED, 9, 16]
    assert attempts(tmp_path, "square-3") == 1
    assert f(str(tmp_path))[1] is StateType.CACHED  # within the new flow run: cached again
    assert attempts(tmp_path, "square-3") == 2  # the new flow run ran it once
    states = sorted(r.state.type.value for r in latest(f).task_runs)
    assert states == ["CACHED", "COMPLETED", "COMPLETED"]


def test_a_flows_persist_result_gives_its_tasks_the_default_policy(tmp_path):
    @task
    def plain(folder: str) -> int:
        count_attempt(folder, "plain")
        return 1

    @flow(cluster="sync", persist_result=True, result_storage=str(tmp_path / "results"))
    def f(folder: str) -> int:
        return plain(folder) + plain(folder)

    assert f(str(tmp_path)) == 2
    assert attempts(tmp_path, "plain") == 1


def test_a_result_storage_key_names_the_file_and_a_later_run_reads_it_back(cluster, tmp_path):
    results = tmp_path / "results"

    @flow(cluster=cluster, result_storage=str(results))
    def f(folder: str) -> list[str]:
        return [hello(folder), hello(folder, name="foo"), hello(folder, name="bar")]

    expected = ["hello world", "hello foo", "hello bar"]
    assert f(str(tmp_path)) == expected
    assert {"hello-world.pickle", "hello-foo.pickle", "hello-bar.pickle"} <= {
        p.name for p in results.iterdir()
    }
    assert f(str(tmp_path)) == expected
    assert [attempts(tmp_path, f"hello-{n}") for n in ("world", "foo", "bar")] == [1, 1, 1]
    assert {r.state.type for r in latest(f).task_runs} == {StateType.CACHED}


def test_a_result_storage_key_with_cache_policy_none_only_names_the_file(tmp_path):
    results = tmp_path / "results"
    named_only = hello.with_options(cache_policy=NONE)

    @flow(cluster="sync", result_storage=str(results))
    def f(folder: str) -> str:
        return named_only(folder)

    assert f(str(tmp_path)) == f(str(tmp_path)) == "hello world"
    assert attempts(tmp_path, "hello-world") == 2
    assert (results / "hello-world.pickle").exists()


def test_a_result_storage_key_reads_runtime_fields_into_folders(tmp_path):
    results = tmp_path / "results"

    @flow(cluster="sync", result_storage=str(results), flow_run_name="night")
    def f() -> int:
        return per_flow_run(1)

    assert f() == 2
    assert (results / "night" / "per_flow_run-1.pkl").exists()


def test_a_result_storage_key_that_leaves_the_storage_is_not_used(tmp_path, observer):
    results = tmp_path / "results"

    @flow(cluster="sync", result_storage=str(results))
    def f() -> int:
        return escapes(5)

    assert f() == 5
    assert not (tmp_path / "5.pkl").exists()
    assert any("leaves the result storage" in log.message for log in observer.logs)


def test_a_bad_result_storage_key_is_refused_when_decorating():
    with pytest.raises(ConfigurationError, match="result_storage_key"):
        task(result_storage_key="{unclosed")(lambda: 1)

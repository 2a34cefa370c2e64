"""Cache policies, as in Prefect 3 (SPEC §1 ``cache_policy``).

Real flows with a real result folder; counts of real executions kept in
files, so runs on the 2-process cluster count too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from daskflow import flow, runs, task
from daskflow.cache import task_input_hash
from daskflow.cache_policies import (
    FLOW_PARAMETERS,
    INPUTS,
    NONE,
    RUN_ID,
    TASK_SOURCE,
    CacheKeyFnPolicy,
)
from daskflow.errors import ConfigurationError
from daskflow.states import StateType
from tests.resources.tasks import count_attempt


def executions(folder: str | Path, name: str) -> int:
    path = Path(folder) / name
    return len(path.read_text()) if path.exists() else 0


@task(cache_policy=INPUTS)
def by_inputs(folder: str, x: int) -> int:
    count_attempt(folder, f"inputs-{x}")
    return x * 10


@task(cache_policy=INPUTS)
def also_by_inputs(folder: str, x: int) -> int:
    count_attempt(folder, f"also-{x}")
    return x * 100


@task(cache_policy=TASK_SOURCE)
def by_source(folder: str, x: int) -> int:
    count_attempt(folder, "source")
    return x


@task(cache_policy=FLOW_PARAMETERS)
def by_flow_parameters(folder: str, x: int) -> int:
    count_attempt(folder, "params")
    return x


@task(cache_policy=RUN_ID)
def by_run_id(folder: str) -> int:
    return count_attempt(folder, "run-id")


@task(cache_policy=INPUTS - "verbose")
def ignoring_verbose(folder: str, x: int, verbose: bool = False) -> int:
    count_attempt(folder, f"verbose-{x}")
    return x


def states_of(f, task_name: str) -> list[StateType]:
    (latest,) = runs(flow=f.name, limit=1)
    return [r.state.type for r in latest.task_runs if r.task_name == task_name]


def test_inputs_reuses_equal_calls_and_two_tasks_never_share_an_entry(cluster, tmp_path):
    @flow(cluster=cluster, result_storage=str(tmp_path / "results"))
    def f(folder: str, x: int) -> tuple[int, int]:
        return by_inputs(folder, x), also_by_inputs(folder, x)

    assert f(str(tmp_path), 2) == (20, 200)
    assert f(str(tmp_path), 2) == (20, 200)
    assert f(str(tmp_path), 3) == (30, 300)
    assert executions(tmp_path, "inputs-2") == executions(tmp_path, "also-2") == 1
    assert executions(tmp_path, "inputs-3") == 1
    f(str(tmp_path), 2)
    assert states_of(f, "by_inputs") == [StateType.CACHED]
    assert states_of(f, "also_by_inputs") == [StateType.CACHED]


def test_task_source_ignores_the_inputs(tmp_path):
    @flow(cluster="sync", result_storage=str(tmp_path / "results"))
    def f(folder: str, x: int) -> int:
        return by_source(folder, x)

    assert f(str(tmp_path), 1) == 1
    assert f(str(tmp_path), 2) == 1  # the inputs are not part of the key
    assert executions(tmp_path, "source") == 1


def test_task_source_misses_when_the_code_changes(tmp_path):
    @task(name="edited", cache_policy=TASK_SOURCE)
    def first(folder: str) -> str:
        count_attempt(folder, "edited")
        return "first"

    @task(name="edited", cache_policy=TASK_SOURCE)
    def second(folder: str) -> str:
        count_attempt(folder, "edited")
        return "second version"

    @flow(cluster="sync", result_storage=str(tmp_path / "results"))
    def f(t, folder: str) -> str:
        return t(folder)

    assert f(first, str(tmp_path)) == "first"
    assert f(first, str(tmp_path)) == "first"
    assert f(second, str(tmp_path)) == "second version"
    assert executions(tmp_path, "edited") == 2


def test_run_id_reuses_within_one_flow_run_only(cluster, tmp_path):
    @flow(cluster=cluster, result_storage=str(tmp_path / "results"))
    def f(folder: str) -> list[int]:
        return [by_run_id(folder), by_run_id(folder)]

    assert f(str(tmp_path)) == [1, 1]  # the second call reused the first's result
    assert states_of(f, "by_run_id") == [StateType.COMPLETED, StateType.CACHED]
    assert f(str(tmp_path)) == [2, 2]  # a new flow run: a new entry


def test_flow_parameters_keys_on_the_flow_run_parameters(cluster, tmp_path):
    @flow(cluster=cluster, result_storage=str(tmp_path / "results"))
    def f(folder: str, day: str) -> list[int]:
        return [by_flow_parameters(folder, 1), by_flow_parameters(folder, 2)]

    assert f(str(tmp_path), "mon") == [1, 1]  # inputs ignored: one entry per flow parameters
    assert executions(tmp_path, "params") == 1
    assert f(str(tmp_path), "mon") == [1, 1]
    assert executions(tmp_path, "params") == 1
    assert f(str(tmp_path), "tue") == [1, 1]
    assert executions(tmp_path, "params") == 2


def test_policies_combine_with_plus_and_inputs_can_leave_one_out(tmp_path):
    combined = by_inputs.with_options(cache_policy=INPUTS + RUN_ID)

    @flow(cluster="sync", result_storage=str(tmp_path / "results"))
    def f(folder: str) -> list[int]:
        return [
            combined(folder, 5),
            combined(folder, 5),
            ignoring_verbose(folder, 1),
            ignoring_verbose(folder, 1, verbose=True),
        ]

    assert f(str(tmp_path)) == [50, 50, 1, 1]
    assert f(str(tmp_path)) == [50, 50, 1, 1]
    assert executions(tmp_path, "inputs-5") == 2  # once per flow run (RUN_ID)
    assert executions(tmp_path, "verbose-1") == 1  # ``verbose`` is not part of the key


def test_none_never_caches_nor_stores(tmp_path):
    uncached = by_inputs.with_options(cache_policy=NONE)
    assert not uncached.options.caches

    @flow(cluster="sync", result_storage=str(tmp_path / "results"))
    def f(folder: str) -> int:
        return uncached(folder, 7)

    f(str(tmp_path))
    f(str(tmp_path))
    assert executions(tmp_path, "inputs-7") == 2
    assert not (tmp_path / "results").exists()
    assert (NONE + INPUTS) == INPUTS


def test_cache_key_fn_policy_wraps_a_key_function(tmp_path):
    def by_folder(context, arguments) -> str:
        return arguments["folder"]

    keyed = by_inputs.with_options(cache_policy=CacheKeyFnPolicy(cache_key_fn=by_folder))

    @flow(cluster="sync", result_storage=str(tmp_path / "results"))
    def f(folder: str, x: int) -> int:
        return keyed(folder, x)

    assert f(str(tmp_path), 1) == 10
    assert f(str(tmp_path), 2) == 10  # same folder, same key
    assert keyed.options.persist_result is None
    assert keyed.options.caches


def test_bad_cache_policies_are_refused_at_decoration():
    with pytest.raises(ConfigurationError, match="not both"):
        task(cache_policy=INPUTS, cache_key_fn=task_input_hash)(lambda x: x)
    with pytest.raises(ConfigurationError, match="not both"):
        by_inputs.with_options(cache_key_fn=task_input_hash)
    with pytest.raises(ConfigurationError, match="cache_policy"):
        task(cache_policy="INPUTS")(lambda x: x)

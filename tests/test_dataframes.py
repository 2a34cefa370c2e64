"""``Task.map_partitions``: a tracked task run per partition, a Dask DataFrame back."""

from __future__ import annotations

import dask.dataframe as dd
import pandas as pd
import pytest

from daskflow import flow, task
from daskflow.states import StateType
from tests.resources.tasks import count_attempt


@task
def scale(part: pd.DataFrame, factor: float) -> pd.DataFrame:
    return part.assign(y=part["x"] * factor)


@task(retries=1)
def flaky_scale(part: pd.DataFrame, folder: str) -> pd.DataFrame:
    if part["x"].iloc[0] == 0 and count_attempt(folder, "first-partition") == 1:
        raise ConnectionError("the first partition fails once")
    return part.assign(y=part["x"] * 2)


@task
def rejects_odd(part: pd.DataFrame) -> pd.DataFrame:
    if part["x"].iloc[0] // 10 % 2:  # partitions hold 0-9, 10-19, 20-29, 30-39
        raise ValueError("odd partition")
    return part


def frame() -> dd.DataFrame:
    return dd.from_pandas(pd.DataFrame({"x": range(40)}), npartitions=4)


def test_one_task_run_per_partition(cluster, observer):
    @flow(cluster=cluster)
    def f() -> pd.DataFrame:
        result = scale.map_partitions(frame(), 3.0)
        assert list(result.columns) == ["x", "y"]  # meta inferred like Dask's
        assert result.npartitions == 4
        return result.compute()

    out = f()
    pd.testing.assert_series_equal(out["y"], out["x"] * 3.0, check_names=False)
    runs = [r for r in observer.task_runs.values() if r.task_name == "scale"]
    assert sorted(r.map_index for r in runs) == [0, 1, 2, 3]
    assert all(r.state.type is StateType.COMPLETED for r in runs)


def test_each_partition_has_the_tasks_retries(cluster, observer, tmp_path):
    @flow(cluster=cluster)
    def f(folder: str) -> float:
        return float(flaky_scale.map_partitions(frame(), folder)["y"].sum().compute())

    assert f(str(tmp_path)) == 2 * sum(range(40))
    attempts = sorted(r.attempts for r in observer.task_runs.values())
    assert attempts == [1, 1, 1, 2]


def test_a_failed_partition_raises_when_computed(cluster):
    @flow(cluster=cluster)
    def f() -> int:
        return len(rejects_odd.map_partitions(frame(), meta=frame()._meta).compute())

    with pytest.raises(ValueError, match="odd partition"):
        f()

"""Result storage, caching and Dask collections returned by tasks (SPEC §1, §5, §10).

Real folders and Parquet files; flows on sync, a threads cluster and a
2-process cluster (cache hits on remote workers, a worker that dies).
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from pathlib import Path

import dask.dataframe as dd
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from daskflow import flow, runs, task
from daskflow.cache import task_input_hash
from daskflow.errors import ConfigurationError
from daskflow.results.storage import ResultStorage
from daskflow.states import StateType
from tests.resources.tasks import count_attempt


@task(persist_result=True)
def frame_of(n: int) -> pd.DataFrame:
    return pd.DataFrame({"i": range(n), "s": [f"r{i}" for i in range(n)]})


@task(persist_result=True)
def table_of(n: int) -> pa.Table:
    return pa.table({"i": list(range(n))})


@task(persist_result=True)
def mapping_of(n: int) -> dict[str, int]:
    return {"n": n}


@task(cache_key_fn=task_input_hash)
def slow_square(folder: str, x: int) -> int:
    count_attempt(folder, f"square-{x}")
    return x * x


@task
def plus_one(x: int) -> int:
    return x + 1


def attempts(folder: Path, name: str) -> int:
    path = folder / name
    return len(path.read_text()) if path.exists() else 0


def latest(f) -> object:
    """The newest recorded run of flow ``f``."""
    return runs(flow=f.name, limit=1)[0]


def runs_by_task(flow_run) -> dict[str, list]:
    by: dict[str, list] = {}
    for run in flow_run.task_runs:
        by.setdefault(run.task_name, []).append(run)
    return by


def test_results_are_written_as_parquet_or_cloudpickle(cluster, tmp_path):
    @flow(cluster=cluster, result_storage=str(tmp_path / "results"))
    def f() -> tuple:
        return frame_of(3), table_of(2), mapping_of(5)

    state = f(return_state=True)
    frame, table, mapping = state.result()
    assert mapping == {"n": 5}
    by = runs_by_task(latest(f))
    stored_frame = by["frame_of"][0]
    assert stored_frame.result_location.endswith(".parquet")
    assert stored_frame.result_location.startswith(str(tmp_path / "results"))
    assert stored_frame.result_size == Path(stored_frame.result_location).stat().st_size
    pd.testing.assert_frame_equal(pd.read_parquet(stored_frame.result_location), frame)
    assert pq.read_table(by["table_of"][0].result_location).equals(table)
    assert by["mapping_of"][0].result_location.endswith(".pkl")
    assert "result_location" in latest(f).to_pandas().columns


def test_results_are_not_stored_unless_asked(tmp_path):
    @flow(cluster="sync", result_storage=str(tmp_path))
    def f() -> int:
        return plus_one(1)

    f(return_state=True)
    assert runs_by_task(latest(f))["plus_one"][0].result_location is None
    assert list(tmp_path.iterdir()) == []


def test_flow_persist_result_stores_every_task_result(tmp_path):
    @flow(cluster="sync", persist_result=True, result_storage=str(tmp_path))
    def f() -> int:
        return plus_one(1)

    f(return_state=True)
    run = runs_by_task(latest(f))["plus_one"][0]
    assert Path(run.result_location).exists()


def test_a_cache_hit_skips_the_task_and_its_value_flows_downstream(cluster, tmp_path):
    @flow(cluster=cluster, result_storage=str(tmp_path / "results"))
    def f(folder: str) -> list[int]:
        return plus_one.map(slow_square.map(unmapped_folder(folder), [2, 3])).result()

    def unmapped_folder(folder: str):
        from daskflow import unmapped

        return unmapped(folder)

    assert f(str(tmp_path)) == [5, 10]
    first = runs_by_task(latest(f))["slow_square"]
    assert f(str(tmp_path)) == [5, 10]
    squares = runs_by_task(latest(f))["slow_square"]
    assert attempts(tmp_path, "square-2") == attempts(tmp_path, "square-3") == 1
    assert [r.state.type for r in squares] == [StateType.CACHED, StateType.CACHED]
    assert squares[0].cache_key is not None
    assert squares[0].result_location == first[0].result_location


def test_other_inputs_miss_the_cache(tmp_path):
    @flow(cluster="sync", result_storage=str(tmp_path / "results"))
    def f(folder: str, x: int) -> int:
        return slow_square(folder, x)

    assert f(str(tmp_path), 4) == 16
    assert f(str(tmp_path), 5) == 25
    assert f(str(tmp_path), 4) == 16
    assert attempts(tmp_path, "square-4") == attempts(tmp_path, "square-5") == 1


def test_cache_expiration_and_refresh_cache(tmp_path):
    short = slow_square.with_options(cache_expiration=datetime.timedelta(seconds=0.5))
    refresh = slow_square.with_options(refresh_cache=True)

    @flow(cluster="sync", result_storage=str(tmp_path / "results"))
    def f(folder: str, which: str) -> int:
        return (short if which == "short" else refresh)(folder, 7)

    folder = str(tmp_path)
    f(folder, "short")
    f(folder, "short")
    assert attempts(tmp_path, "square-7") == 1  # reused while fresh
    time.sleep(0.6)
    f(folder, "short")
    assert attempts(tmp_path, "square-7") == 2  # expired: ran again
    f(folder, "refresh")
    assert attempts(tmp_path, "square-7") == 3  # refresh_cache runs anyway


def test_an_input_that_cannot_be_hashed_runs_uncached_with_a_warning(tmp_path, observer):
    @task(cache_key_fn=task_input_hash)
    def uses_lock(lock: object, folder: str) -> str:
        count_attempt(folder, "lock")
        return "ran"

    @flow(cluster="sync", result_storage=str(tmp_path / "results"))
    def f(folder: str) -> str:
        return uses_lock(threading.Lock(), folder)

    assert f(str(tmp_path)) == "ran"
    assert f(str(tmp_path)) == "ran"
    assert attempts(tmp_path, "lock") == 2
    warnings = [e.message for e in observer.logs if e.level == logging.WARNING]
    assert any("caching is off for this run" in m and "cannot be" in m for m in warnings)


def test_task_input_hash_is_deterministic_and_follows_the_source():
    @task
    def one(df: pd.DataFrame) -> int:
        return len(df)

    @task(name="one")
    def other(df: pd.DataFrame) -> int:
        return len(df) + 1

    class Context:
        def __init__(self, task: object) -> None:
            self.task = task

    df = pd.DataFrame({"x": [1.0, 2.0]})
    key = task_input_hash(Context(one), {"df": df})
    assert key == task_input_hash(Context(one), {"df": df.copy()})
    assert key != task_input_hash(Context(one), {"df": df.assign(x=[1.0, 3.0])})
    assert key != task_input_hash(Context(other), {"df": df})


def test_bad_caching_options_are_refused():
    with pytest.raises(ConfigurationError, match="cache_key_fn"):
        task(cache_key_fn="not callable")(plus_one.fn)
    with pytest.raises(ConfigurationError, match="cache_expiration"):
        task(cache_expiration=-1)(plus_one.fn)
    with pytest.raises(ConfigurationError, match="persist_result"):
        task(persist_result="yes")(plus_one.fn)


def test_storage_survives_a_missing_value_file(tmp_path):
    storage = ResultStorage(str(tmp_path))
    record = storage.write("run-1", {"a": 1}, cache_key="k")
    assert storage.read(storage.lookup("k")) == {"a": 1}
    Path(record.location).unlink()
    assert storage.lookup("k") is None  # a miss, never a crash


@task(persist_result=True)
def produce(folder: str) -> list[int]:
    count_attempt(folder, "produce")
    return [1, 2, 3]


@task
def consume_and_die_once(values: list[int], folder: str) -> int:
    import os

    if count_attempt(folder, "consume") == 1:
        os._exit(1)  # the worker holding ``values`` dies with it
    return sum(values)


def test_a_lost_worker_reloads_a_stored_result_instead_of_rerunning(processes_client, tmp_path):
    @flow(cluster=processes_client, result_storage=str(tmp_path / "results"))
    def f(folder: str) -> int:
        values = produce.submit(folder)
        values.wait()
        return consume_and_die_once(values, folder)

    assert f(str(tmp_path)) == 6
    assert attempts(tmp_path, "consume") == 2
    assert attempts(tmp_path, "produce") == 1  # reloaded from storage, not recomputed


@task
def build_frame(n: int) -> dd.DataFrame:
    pdf = pd.DataFrame({"x": range(n), "y": [float(i) for i in range(n)]})
    return dd.from_pandas(pdf, npartitions=4)


@task
def total_of(ddf: dd.DataFrame) -> float:
    return float(ddf["y"].sum().compute())


def test_a_returned_dask_collection_is_persisted_and_described(cluster):
    @flow(cluster=cluster)
    def f() -> float:
        return total_of(build_frame(100))

    state = f(return_state=True)
    assert state.result() == float(sum(range(100)))
    built = runs_by_task(latest(f))["build_frame"][0]
    assert built.collection["npartitions"] == 4
    assert built.collection["dtypes"] == {"x": "int64", "y": "float64"}
    assert built.collection["type"] == "dask.DataFrame"


@task(cache_key_fn=task_input_hash)
def double_part(part: pd.DataFrame, folder: str) -> pd.DataFrame:
    count_attempt(folder, "double_part")
    return part.assign(x=part["x"] * 2)


def test_map_partitions_runs_hit_the_cache_per_partition(threads_client, tmp_path):
    @flow(name="cached-partitions", cluster=threads_client, result_storage=str(tmp_path / "r"))
    def f(folder: str) -> int:
        ddf = dd.from_pandas(pd.DataFrame({"x": range(40)}), npartitions=4)
        doubled = double_part.map_partitions(ddf, folder, meta=ddf._meta)  # no inference call
        return int(doubled["x"].sum().compute())

    assert f(str(tmp_path)) == f(str(tmp_path)) == 2 * sum(range(40))
    assert attempts(tmp_path, "double_part") == 4
    states = {r.state.type for r in latest(f).task_runs}
    assert states == {StateType.CACHED}


def test_a_notebook_task_keeps_its_source_when_sent_to_a_worker():
    """Workers cannot read the source of a notebook cell: it travels with the task."""
    import linecache

    import cloudpickle

    code = "def cell_task(x):\n    return x + 1\n"
    filename = "/tmp/ipykernel_0/cell-1.py"  # how IPython names a cell; the file never exists
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    namespace: dict = {}
    exec(compile(code, filename, "exec"), namespace)
    cell_task = task(cache_key_fn=task_input_hash)(namespace["cell_task"])

    class Context:
        def __init__(self, task: object) -> None:
            self.task = task

    here = task_input_hash(Context(cell_task), {"x": 1})
    assert cell_task.source == code
    shipped = cloudpickle.dumps(cell_task)
    del linecache.cache[filename]  # as on a worker process
    on_worker = cloudpickle.loads(shipped)
    assert on_worker.source == code
    assert task_input_hash(Context(on_worker), {"x": 1}) == here

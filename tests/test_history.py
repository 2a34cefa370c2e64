"""``daskflow.history``: flows run in-process, then read back from the run store.

Each test records into a SQLite store of its own (config ``daskflow.store``,
which the engine and ``runs()``/``get_run()`` both read), so listings are exact.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, timedelta
from typing import Any

import dask
import pandas as pd
import pytest

from daskflow import flow, get_run_logger, unmapped
from daskflow.errors import ConfigurationError, DaskflowError, RunNotFoundError
from daskflow.history import STATE_COLORS, FlowRun, format_duration, get_run, runs
from daskflow.states import StateType
from tests.resources.flows import explode, greet, scale, total


@pytest.fixture(autouse=True)
def store(tmp_path, monkeypatch) -> Iterator[str]:
    """A fresh store for each test: the engine records into it, reads come from it."""
    url = str(tmp_path / "history.db")
    monkeypatch.setenv("DASKFLOW_STORE", url)  # for the CLI's subprocesses
    with dask.config.set({"daskflow.store": url}):
        yield url


def only_run(flow_name: str) -> FlowRun:
    [run] = runs(flow=flow_name)
    return run


def test_a_completed_flow_run_is_recorded(cluster):
    @flow(name="greeting", cluster=cluster)
    def greeting(name: str, times: int = 2) -> list[str]:
        get_run_logger().info("greeting %d times", times)
        return [greet(name) for _ in range(times)]

    assert greeting("ada", times=2) == ["hello ada", "hello ada"]

    run = only_run("greeting")
    assert run.flow_name == "greeting"
    assert run.name.startswith("greeting-")
    assert run.state.type is StateType.COMPLETED
    assert run.state.is_completed()
    assert run.parameters == {"name": "ada", "times": 2}
    assert run.parent_id is None
    assert run.start_time is not None
    assert run.start_time.tzinfo is not None
    assert run.end_time is not None
    assert run.end_time.utcoffset() == timedelta(0)
    assert run.created <= run.start_time <= run.end_time
    assert run.duration == run.end_time - run.start_time

    assert [t.task_name for t in run.task_runs] == ["greet", "greet"]
    for task_run in run.task_runs:
        assert task_run.flow_run_id == run.id
        assert task_run.state.type is StateType.COMPLETED
        assert task_run.attempts == 1
        assert task_run.duration is not None
        assert task_run.duration >= timedelta(0)
        assert task_run.error_type is None
    if cluster != "sync":
        assert all(t.worker for t in run.task_runs)

    assert [t.state.type for t in run.transitions] == [
        StateType.PENDING,
        StateType.RUNNING,
        StateType.COMPLETED,
    ]
    assert all(t.task_run_id is None for t in run.transitions)

    messages = {(r.task_name, r.message) for r in run.logs}
    assert (None, "greeting 2 times") in messages
    assert ("greet", "greeting ada") in messages
    greeting_record = next(r for r in run.logs if r.message == "greeting ada")
    assert greeting_record.level == logging.INFO
    assert greeting_record.level_name == "INFO"
    assert greeting_record.task_run_id in {t.id for t in run.task_runs}
    assert greeting_record.timestamp.tzinfo is UTC


def test_get_run_by_id_and_by_unique_prefix():
    @flow(cluster="sync")
    def lookup() -> str:
        return greet("x")

    lookup()
    run = only_run("lookup")
    assert get_run(run.id).id == run.id
    assert get_run(run.id[:8]).id == run.id
    assert get_run(run.id).name == run.name


def test_an_unknown_id_raises_run_not_found(store):
    with pytest.raises(RunNotFoundError, match="no flow run with id 'feedc0de'") as info:
        get_run("feedc0de")
    assert isinstance(info.value, LookupError)
    assert isinstance(info.value, DaskflowError)
    assert info.value.run_id == "feedc0de"
    assert store in str(info.value)


def test_a_failed_flow_run_keeps_its_error():
    @flow(name="breaks", cluster="sync")
    def breaks() -> None:
        explode("kaput")

    state = breaks(return_state=True)
    assert state.is_failed()

    run = only_run("breaks")
    assert run.state.type is StateType.FAILED
    assert run.state.is_failed()
    assert run.state.error_type == "ValueError"
    assert "exploded: kaput" in (run.state.error_message or "")
    assert "ValueError: exploded: kaput" in (run.state.traceback or "")
    with pytest.raises(DaskflowError, match="exploded: kaput"):
        run.state.result()

    [task_run] = run.task_runs
    assert task_run.state.type is StateType.FAILED
    assert task_run.error_type == "ValueError"
    assert task_run.error_message == "exploded: kaput"
    assert "raise ValueError" in (task_run.traceback or "")
    assert task_run.state.error_type == "ValueError"


def test_runs_filters_by_flow_and_state_newest_first():
    @flow(name="ok", cluster="sync")
    def ok(i: int) -> int:
        return i

    @flow(name="ko", cluster="sync")
    def ko() -> None:
        explode("x")

    for i in range(3):
        ok(i)
    ko(return_state=True)

    everything = runs()
    assert [r.flow_name for r in everything] == ["ko", "ok", "ok", "ok"]
    assert [r.parameters["i"] for r in runs(flow="ok")] == [2, 1, 0]
    assert [r.parameters["i"] for r in runs(flow=ok, limit=2)] == [2, 1]
    assert len(runs(limit=None)) == 4
    for failed in ("failed", "FAILED", " Failed ", StateType.FAILED):
        assert [r.flow_name for r in runs(state=failed)] == ["ko"]
    assert [r.flow_name for r in runs(flow="ko", state="completed")] == []
    assert runs(flow="no such flow") == []


def test_an_unknown_state_name_is_refused():
    with pytest.raises(ConfigurationError, match="one of SCHEDULED") as info:
        runs(state="finished")
    assert isinstance(info.value, ValueError)


def test_a_subflow_run_names_its_parent():
    @flow(name="child")
    def child(x: int) -> str:
        return greet(str(x))

    @flow(name="parent", cluster="sync")
    def parent() -> list[str]:
        return [child(1), child(2)]

    parent()
    parent_run = only_run("parent")
    children = runs(flow="child")
    assert len(children) == 2
    assert {c.parent_id for c in children} == {parent_run.id}
    assert parent_run.parent_id is None


def test_to_pandas_one_row_per_task_run_with_typed_columns():
    @flow(name="mapped", cluster="sync")
    def mapped(n: int) -> float:
        return total(scale.map(range(n), unmapped(2.0)))

    assert mapped(20) == 2.0 * sum(range(20))
    df = only_run("mapped").to_pandas()

    assert list(df.columns) == [
        "id",
        "name",
        "task_name",
        "map_index",
        "state",
        "attempts",
        "worker",
        "start_time",
        "end_time",
        "duration",
        "error_type",
        "error_message",
        "tags",
        "result_location",
        "result_size",
    ]
    assert len(df) == 21
    assert df["task_name"].value_counts().to_dict() == {"scale": 20, "total": 1}
    assert df["map_index"].dtype == "Int64"
    assert sorted(df.loc[df["task_name"] == "scale", "map_index"]) == list(range(20))
    assert df.loc[df["task_name"] == "total", "map_index"].isna().all()
    assert isinstance(df["state"].dtype, pd.CategoricalDtype)
    assert set(df["state"].cat.categories) == {t.value for t in StateType}
    assert (df["state"] == "COMPLETED").all()
    assert df["attempts"].dtype == "int64"
    assert isinstance(df["start_time"].dtype, pd.DatetimeTZDtype)
    assert str(df["start_time"].dt.tz) == "UTC"
    assert pd.api.types.is_timedelta64_dtype(df["duration"])
    assert (df["duration"] == df["end_time"] - df["start_time"]).all()
    assert df["error_type"].isna().all()
    assert df.attrs["flow_run_id"] == only_run("mapped").id


def test_to_pandas_of_a_run_without_task_runs_has_the_columns():
    @flow(name="empty", cluster="sync")
    def empty() -> int:
        return 1

    empty()
    df = only_run("empty").to_pandas()
    assert len(df) == 0
    assert "task_name" in df.columns
    assert isinstance(df["state"].dtype, pd.CategoricalDtype)
    assert isinstance(df["start_time"].dtype, pd.DatetimeTZDtype)


class SpyStore:
    """Forwards to a real store and remembers which methods were called."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.url = store.url
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.calls.append(name)
        return getattr(self.store, name)


def test_repr_html_shows_state_parameters_and_counts_without_reading_task_runs(store):
    @flow(name="carded", cluster="sync")
    def carded(label: str, n: int = 3) -> None:
        total(scale.map(range(n), unmapped(1.0)))
        explode(label)

    carded("<b>not bold</b>", return_state=True)
    from daskflow.store import open_store

    spy = SpyStore(open_store(store))
    run = get_run(only_run("carded").id, store=spy)
    html = run._repr_html_()

    assert "list_task_runs" not in spy.calls
    assert "count_task_runs" in spy.calls
    assert "carded" in html
    assert run.name in html
    assert "FAILED" in html
    assert STATE_COLORS[StateType.FAILED] in html
    assert "label" in html
    assert "&lt;b&gt;not bold&lt;/b&gt;" in html  # parameters are escaped
    assert "<b>not bold</b>" not in html
    assert "scale" in html
    assert "total" in html
    assert "explode" in html
    assert "5 task runs" in html
    assert format_duration(run.duration) in html


def test_repr_and_refresh():
    @flow(name="shown", cluster="sync")
    def shown() -> str:
        return greet("r")

    shown()
    run = only_run("shown")
    text = repr(run)
    assert run.name in text
    assert "COMPLETED" in text
    assert run.id[:8] in text
    again = run.refresh()
    assert again.id == run.id
    assert again is not run
    assert again.state.type is StateType.COMPLETED


def test_read_task_runs_and_logs_are_bounded_and_filtered():
    @flow(name="bounded", cluster="sync")
    def bounded() -> float:
        greet("a")
        return total(scale.map(range(10), unmapped(1.0)))

    bounded()
    run = only_run("bounded")
    assert len(run.read_task_runs(limit=3)) == 3
    assert {t.task_name for t in run.read_task_runs(task="scale")} == {"scale"}
    assert len(run.read_task_runs(task="scale")) == 10
    assert [r.message for r in run.read_logs(task="greet")] == ["greeting a"]
    assert run.task_counts() == {
        "greet": {StateType.COMPLETED: 1},
        "scale": {StateType.COMPLETED: 10},
        "total": {StateType.COMPLETED: 1},
    }


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0.0042, "4.2ms"), (0.25, "250ms"), (12.34, "12.3s"), (245, "4m 05s"),
     (7380, "2h 03m")],
)  # fmt: skip
def test_format_duration(seconds, text):
    value = None if seconds is None else timedelta(seconds=seconds)
    assert format_duration(value) == text

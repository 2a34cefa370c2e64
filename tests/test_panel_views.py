"""The panel's model and views on a real SQLite store: ``update()``, then ``source.data``.

Runs are real flow runs (``cluster="sync"``) recorded in a store of the
test's own; the big run (100,000 task runs) is written to the store as events,
the way the engine writes them, which is much faster than running it.
"""

from __future__ import annotations

import time

import pytest

from daskflow import flow, task
from daskflow.panel.model import TIMELINE_LIMIT, PanelModel
from daskflow.panel.views import VIEWS
from daskflow.states import StateType
from daskflow.store.sql import SQLStore
from tests.test_store import a_flow_run


@task
def square(x: int) -> int:
    return x * x


@task
def broken(values: list[int]) -> int:
    raise KeyError("no column 'amount'")


@pytest.fixture
def store(tmp_path, monkeypatch):
    path = tmp_path / "runs.db"
    monkeypatch.setenv("DASKFLOW_STORE", str(path))
    import dask

    with dask.config.set({"daskflow.store": str(path)}):
        yield SQLStore(str(path))


def run_flows() -> None:
    @flow(name="panel-ok", cluster="sync")
    def ok(n: int) -> int:
        return sum(square.map(range(n)).result())

    @flow(name="panel-broken", cluster="sync")
    def bad(n: int) -> int:
        return broken(square.map(range(n)))

    ok(50)
    bad(5, return_state=True)


def views_of(model: PanelModel) -> dict[str, object]:
    names = ("alerts", "runs", "progress", "timeline", "failures", "resources")
    views = {name: view(model) for name, view in zip(names, VIEWS, strict=True)}
    model.refresh()
    for view in views.values():
        view.update()
    return views


def test_views_show_runs_progress_timeline_failures_and_alerts(store):
    model = PanelModel(store, clock=lambda: time.time() - 3600)  # opened before the runs
    run_flows()
    views = views_of(model)

    runs = views["runs"].source.data
    assert runs["flow"][:2] == ["panel-broken", "panel-ok"]  # newest first
    assert runs["state"][:2] == ["FAILED", "COMPLETED"]
    assert runs["tasks"][1] == "50 / 0 / 50"

    assert model.selected == runs["id"][0]  # follows the newest run
    progress = views["progress"].source.data
    assert progress["task"] == ["broken", "square"]
    assert progress["completed"] == [0, 5]
    assert progress["failed"] == [1, 0]

    timeline = views["timeline"].source.data
    assert len(timeline["lane"]) == 6  # one bar per task run of a small run
    assert set(timeline["lane"]) == {"broken", "square"}

    failures = views["failures"].source.data
    assert failures["name"] == ["broken"]
    assert failures["error_type"] == ["KeyError"]
    assert "no column 'amount'" in failures["error_message"][0]
    assert "Traceback" in failures["traceback"][0]

    alerts = views["alerts"]
    assert alerts.source.data["name"] == [runs["name"][0]]
    assert "failed since this page opened" in alerts.root.text

    model.select(runs["id"][1])  # the user picks the completed run
    model.refresh()
    views["progress"].update()
    assert views["progress"].source.data["completed"] == [50]
    assert "No cluster attached" in views["resources"].note.text


def test_alerts_name_only_runs_that_ended_after_the_page_opened(store):
    run_flows()
    model = PanelModel(store)
    views = views_of(model)
    assert views["alerts"].source.data["name"] == []
    assert views["alerts"].root.text == ""


def test_filters(store):
    run_flows()
    model = PanelModel(store)
    views = views_of(model)
    views["runs"].state_select.value = "FAILED"
    model.refresh()
    views["runs"].update()
    assert views["runs"].source.data["state"] == ["FAILED"]
    views["runs"].state_select.value = "all"
    views["runs"].flow_select.value = "panel-ok"
    model.refresh()
    views["runs"].update()
    assert views["runs"].source.data["flow"] == ["panel-ok"]


def test_a_run_of_100_000_task_runs_stays_aggregated(store):
    flow_run_id = "f" * 32
    store.write(a_flow_run(flow_run_id, time.time(), tasks=100_000, task="extract"))
    model = PanelModel(store)
    views = views_of(model)
    assert model.total == 100_000 > TIMELINE_LIMIT
    assert views["progress"].source.data["completed"] == [100_000]
    timeline = views["timeline"].source.data
    assert timeline["lane"] == ["extract"]  # one bar for the task name, not 100,000
    assert "100,000 runs" in timeline["name"][0]
    assert views["runs"].source.data["tasks"] == ["100,000 / 0 / 100,000"]


def test_resources_come_from_an_attached_scheduler(store):
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        model = PanelModel(store, scheduler=cluster.scheduler)
        views = views_of(model)
        model.refresh()
        views["resources"].update()
    data = views["resources"].source.data
    assert len(data["time"]) == 2
    assert all(m > 0 for m in data["memory"])
    assert views["resources"].note.text == ""


def test_task_runs_can_be_listed_by_state(store):
    t = time.time()
    store.write(a_flow_run("a" * 32, t, tasks=30, task="load"))
    assert [r.state for r in store.list_task_runs("a" * 32, states=[StateType.FAILED])] == []
    done = store.list_task_runs("a" * 32, states=[StateType.COMPLETED])
    assert [r.name for r in done] == [f"load-{i}" for i in range(30)]


def test_the_panel_is_a_page_of_the_dask_dashboard(store):
    import urllib.request

    from distributed import Client, LocalCluster

    @flow(name="panel-on-dask")
    def small() -> int:
        return square(3)

    with (
        LocalCluster(n_workers=1, processes=False, dashboard_address="127.0.0.1:0") as cluster,
        Client(cluster) as client,
    ):
        assert small.with_options(cluster=client)() == 9
        base = f"http://127.0.0.1:{cluster.scheduler.http_server.port}"
        with urllib.request.urlopen(f"{base}/daskflow", timeout=30) as response:
            assert response.status == 200  # a Bokeh page in the dashboard's template
            assert "Bokeh" in response.read().decode()
        with urllib.request.urlopen(f"{base}/status", timeout=30) as response:
            assert 'href="daskflow"' in response.read().decode()  # in the navigation bar


def test_the_timeline_draws_each_attempt_of_a_retried_run(store, tmp_path):
    from tests.resources.tasks import fails_twice

    @flow(name="panel-retries", cluster="sync")
    def retried(folder: str) -> str:
        return fails_twice(folder)

    assert retried(str(tmp_path)) == "ok"
    views = views_of(PanelModel(store))
    timeline = views["timeline"].source.data
    assert timeline["name"] == [f"fails_twice (attempt {i})" for i in (1, 2, 3)]
    assert timeline["state"] == ["RETRYING", "RETRYING", "COMPLETED"]

"""The panel's model and each view on a real SQLite store: ``update()``, then ``source.data``.

Small runs are real flow runs (``cluster="sync"``) recorded in a store of
this module's own; the big run (100,000 task runs) is written to a store as
events, the way the engine writes them, which is much faster than running
it. Views are put in a Bokeh ``Document``, as in a served page, so that
widget callbacks (row selection, filters) fire as they do in a browser.
"""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import dask
import pytest
from bokeh.document import Document
from bokeh.events import ButtonClick
from bokeh.models import ColumnDataSource
from bokeh.models.widgets import DataTable, Div

from daskflow import flow, get_run_logger, task
from daskflow.observers.events import Event, FlowRunCreated, StateChanged, TaskRunCreated
from daskflow.panel import PanelModel, make_document
from daskflow.panel.model import RECENT_RUNS, TIMELINE_CELLS, TIMELINE_LIMIT
from daskflow.panel.views import (
    AlertsView,
    FailuresView,
    LogsView,
    ParametersView,
    ProgressView,
    ResourcesView,
    RunsView,
    TimelineView,
)
from daskflow.states import State, StateType
from daskflow.store.sql import SQLStore

S = StateType


# -- flows and stores ----------------------------------------------------------------
@task
def square(x: int) -> int:
    return x * x


@task
def report(values: list[int]) -> int:
    get_run_logger().info("report of %d values", len(values))
    return sum(values)


@task
def broken(values: list[int]) -> int:
    raise KeyError("no column 'amount'")


@flow(name="panel-ok", cluster="sync")
def ok(n: int) -> int:
    return report(square.map(range(n)))


@flow(name="panel-broken", cluster="sync")
def bad(n: int) -> int:
    return broken(square.map(range(n)))


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """A SQLite store with one COMPLETED run (50 squares, a report) and one FAILED run."""
    path = str(tmp_path_factory.mktemp("panel") / "runs.db")
    with pytest.MonkeyPatch.context() as mp, dask.config.set({"daskflow.store": path}):
        mp.setenv("DASKFLOW_STORE", path)
        before = time.time()
        assert ok(50) == sum(i * i for i in range(50))
        state = bad(5, return_state=True)
        assert state.type is S.FAILED
        store = SQLStore(path)
        broken_run, ok_run = store.list_flow_runs(limit=2)
        yield SimpleNamespace(path=path, store=store, ok=ok_run, bad=broken_run, before=before)
        store.close()


def write_big_run(store: SQLStore, fid: str, n: int, start: float) -> dict[str, Counter[S]]:
    """A RUNNING flow run of ``n`` task runs over 100 s, written as events.

    The last 500 PENDING, the 500 before RUNNING, the rest COMPLETED but
    one in 1,000 FAILED (99 of them). Returns ``{task_name: Counter(state)}``.
    """
    names = ("extract", "transform", "load")
    events: list[Event] = [
        FlowRunCreated(fid, "big", "big-run", {}, None, start),
        StateChanged(fid, None, State(S.RUNNING, start), 1),
    ]
    expected: dict[str, Counter[S]] = {name: Counter() for name in names}
    for i in range(n):
        tid, task_name, at = f"{fid[:16]}{i:016x}", names[i % 3], start + 1 + i * 100 / n
        events.append(
            TaskRunCreated(tid, fid, task_name, f"{task_name}-{i}", i, frozenset(), i, at)
        )
        kind = S.PENDING if i >= n - 500 else S.RUNNING if i >= n - 1000 else S.COMPLETED
        if kind is not S.PENDING:
            events.append(StateChanged(fid, tid, State(S.RUNNING, at), 1, "w1"))
        if kind is S.COMPLETED and i % 1000 == 0:
            kind = S.FAILED
            failure = State(S.FAILED, at + 0.5, error_type="ValueError", error_message="bad")
            events.append(StateChanged(fid, tid, failure, 1, "w1"))
        elif kind is S.COMPLETED:
            events.append(StateChanged(fid, tid, State(S.COMPLETED, at + 0.5), 1, "w1"))
        expected[task_name][kind] += 1
        if len(events) >= 30_000:
            store.write(events)
            events = []
    store.write(events)
    return expected


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """A SQLite store holding one live flow run of 100,000 task runs (started 2 min ago)."""
    store = SQLStore(str(tmp_path_factory.mktemp("panel-big") / "runs.db"))
    fid = "b" * 32
    expected = write_big_run(store, fid, 100_000, time.time() - 120)
    yield SimpleNamespace(store=store, id=fid, expected=expected)
    store.close()


class Page(SimpleNamespace):
    """A model and its eight views in one Bokeh document, as ``make_document`` has them."""

    model: PanelModel
    alerts: AlertsView
    runs: RunsView
    progress: ProgressView
    timeline: TimelineView
    failures: FailuresView
    logs: LogsView
    parameters: ParametersView
    resources: ResourcesView

    def refresh(self) -> None:
        self.model.refresh()
        for view in self.views():
            view.update()

    def views(self) -> list[Any]:
        return [
            self.alerts, self.runs, self.progress, self.timeline, self.failures, self.logs,
            self.parameters, self.resources,
        ]  # fmt: skip


def page(model: PanelModel) -> Page:
    built = Page(
        model=model,
        alerts=AlertsView(model),
        runs=RunsView(model),
        progress=ProgressView(model),
        timeline=TimelineView(model),
        failures=FailuresView(model),
        logs=LogsView(model),
        parameters=ParametersView(model),
    )
    built.resources = ResourcesView(model, x_range=built.timeline.figure.x_range)
    doc = Document()
    for view in built.views():
        doc.add_root(view.root)
    built.refresh()
    return built


def rows(source: ColumnDataSource) -> int:
    return len(next(iter(source.data.values()), []))


# -- small runs ----------------------------------------------------------------------
def test_the_runs_table_lists_runs_with_state_duration_and_task_counts(recorded):
    shown = page(PanelModel(recorded.store)).runs.source.data
    assert shown["flow"][:2] == ["panel-broken", "panel-ok"]  # newest first
    assert shown["state"][:2] == ["FAILED", "COMPLETED"]
    assert shown["tasks"][:2] == ["5 / 1 / 6", "51 / 0 / 51"]  # done / failed / total
    assert shown["duration"][1].endswith(" s")
    assert shown["id"][:2] == [recorded.bad.id, recorded.ok.id]


def test_progress_is_one_bar_per_task_name_with_counts_by_state(recorded):
    built = page(PanelModel(recorded.store))
    assert built.model.selected == recorded.bad.id  # follows the newest run
    bars = built.progress.source.data
    assert bars["task"] == ["broken", "square"]
    assert (bars["completed"], bars["failed"], bars["pending"]) == ([0, 5], [1, 0], [0, 0])
    assert "6 task runs: 5 completed, 1 failed" in built.progress.summary.text
    built.model.select(recorded.ok.id)
    built.refresh()
    assert built.progress.source.data["task"] == ["report", "square"]
    assert built.progress.source.data["completed"] == [1, 50]


def test_failures_show_error_type_message_and_traceback_and_logs_show(recorded):
    built = page(PanelModel(recorded.store))
    failures = built.failures.source.data
    assert failures["name"] == ["broken"]
    assert failures["state"] == ["FAILED"]
    assert failures["error_type"] == ["KeyError"]
    assert "no column 'amount'" in failures["error_message"][0]
    assert "Traceback" in failures["traceback"][0]
    assert "Traceback" in built.failures.traceback.text  # the first failure's, escaped
    assert "KeyError: &quot;no column 'amount'&quot;" in built.failures.traceback.text or (
        "no column 'amount'" in built.failures.traceback.text
    )
    built.model.select(recorded.ok.id)
    built.refresh()
    assert built.failures.source.data["name"] == []
    assert built.failures.traceback.text == ""
    logs = built.logs.source.data
    assert "report of 50 values" in logs["message"]
    assert logs["task"][logs["message"].index("report of 50 values")] == "report"


def test_the_timeline_of_a_small_run_is_one_bar_per_task_run(recorded):
    model = PanelModel(recorded.store)
    model.select(recorded.ok.id)
    built = page(model)
    bars = built.timeline.source.data
    assert len(bars["lane"]) == 51
    assert Counter(bars["lane"]) == {"square": 50, "report": 1}
    assert set(bars["state"]) == {"COMPLETED"}
    assert all(s <= e for s, e in zip(bars["start"], bars["end"], strict=True))
    assert built.timeline.bins.data["lane"] == []  # no histogram for a small run
    assert list(built.timeline.lanes.factors) == ["report", "square"]


def test_the_timelines_legend_names_the_states_drawn_beside_the_plot(recorded, big):
    model = PanelModel(recorded.store)
    model.select(recorded.ok.id)
    built = page(model)
    timeline = built.timeline
    legend = timeline.legend
    assert legend in timeline.figure.right  # outside the plot area
    [item] = legend.items
    assert item.label.field == "state"  # an entry per state of the bars, in their colour
    [bars] = item.renderers
    assert bars.data_source is timeline.source
    assert bars.glyph.fill_color == "color"  # the column of state colours
    big_run = page(PanelModel(big.store)).timeline
    [item] = big_run.legend.items  # a big run: the states of the histogram's segments
    assert item.renderers[0].data_source is big_run.bins
    assert {*big_run.bins.data["state"]} == {"COMPLETED", "FAILED", "RUNNING"}


def test_each_attempt_of_a_retried_task_run_is_a_bar(tmp_path, monkeypatch):
    from tests.resources.tasks import fails_twice

    path = str(tmp_path / "runs.db")
    monkeypatch.setenv("DASKFLOW_STORE", path)

    @flow(name="panel-retries", cluster="sync")
    def retried(folder: str) -> str:
        return fails_twice(folder)

    with dask.config.set({"daskflow.store": path}):
        assert retried(str(tmp_path)) == "ok"
    bars = page(PanelModel(SQLStore(path))).timeline.source.data
    assert bars["name"] == [f"fails_twice (attempt {i})" for i in (1, 2, 3)]
    assert bars["state"] == ["RETRYING", "RETRYING", "COMPLETED"]


def test_alerts_name_failed_runs_since_the_seen_mark_and_link_to_them(recorded):
    from daskflow.panel.seen import SeenMark

    mark = SeenMark(None)
    mark.write(recorded.before - 1)  # the user last looked before both runs
    before = page(PanelModel(recorded.store, seen=mark))
    assert before.alerts.source.data["name"] == [recorded.bad.name]
    assert before.alerts.source.data["state"] == ["FAILED"]
    assert before.alerts.root.visible
    assert "1 flow run failed since you last looked" in before.alerts.banner.text
    assert f"href='?run={recorded.bad.id}'" in before.alerts.banner.text
    before.alerts.dismiss._trigger_event(ButtonClick(before.alerts.dismiss))  # "Mark as seen"
    assert not before.alerts.root.visible
    assert mark.read() == pytest.approx(time.time(), abs=60)
    after = page(PanelModel(recorded.store, seen=mark))  # a page opened later
    assert after.alerts.source.data["name"] == []
    assert after.alerts.banner.text == ""
    assert not after.alerts.root.visible


def test_selecting_a_row_selects_the_run_and_the_row_follows_it(tmp_path):
    store = SQLStore(str(tmp_path / "runs.db"))
    t = time.time() - 60
    for n in range(3):
        store.write(finished_run(f"{n:032x}", t + n))
    built = page(PanelModel(store))
    ids = built.runs.source.data["id"]
    assert built.model.selected == ids[0]
    assert built.runs.source.selected.indices == [0]  # the followed run is highlighted
    built.runs.source.selected.indices = [1]  # a click on the second row
    assert (built.model.selected, built.model.follow) == (ids[1], False)
    store.write(finished_run("f" * 32, t + 10))  # a new run pushes the row down
    built.refresh()
    assert built.model.selected == ids[1]
    assert built.runs.source.selected.indices == [2]
    assert built.progress.summary.text.startswith(f"<b>run-{ids[1][:4]}")
    built.runs.newest._trigger_event(ButtonClick(built.runs.newest))  # "follow the newest run"
    built.refresh()
    assert built.model.selected == "f" * 32
    assert built.runs.source.selected.indices == [0]


def test_filters_query_the_store_not_just_the_recent_runs(recorded, tmp_path):
    store = SQLStore(str(tmp_path / "runs.db"))
    t = time.time() - 600
    store.write(finished_run("0" * 32, t, S.FAILED, flow="old"))
    for n in range(1, RECENT_RUNS + 10):  # push it out of the recent runs
        store.write(finished_run(f"{n:032x}", t + n))
    built = page(PanelModel(store, clock=lambda: t - 1, seen=seen_at(t - 1)))
    assert "0" * 32 not in built.runs.source.data["id"]
    assert built.alerts.source.data["id"] == []  # never seen among the recent runs
    built.runs.state_select.value = "FAILED"
    built.refresh()
    assert built.runs.source.data["id"] == ["0" * 32]
    assert built.model.selected == "0" * 32  # follows the newest run the filter shows
    built.runs.state_select.value = "all"
    built.runs.flow_select.value = "old"
    built.refresh()
    assert built.runs.source.data["flow"] == ["old"]
    assert "old" in built.runs.flow_select.options


def test_an_alert_stays_when_newer_runs_push_its_run_out_of_the_list(tmp_path):
    store = SQLStore(str(tmp_path / "runs.db"))
    t = time.time() - 600
    built = page(PanelModel(store, clock=lambda: t - 1, seen=seen_at(t - 1)))
    store.write(finished_run("0" * 32, t, S.CRASHED))
    built.refresh()
    assert built.alerts.source.data["state"] == ["CRASHED"]
    for n in range(1, RECENT_RUNS + 10):
        store.write(finished_run(f"{n:032x}", t + n))
    built.refresh()
    assert built.alerts.source.data["id"] == ["0" * 32]


def test_a_scheduled_run_shows_with_the_time_of_its_slot(tmp_path):
    store = SQLStore(str(tmp_path / "runs.db"))
    t = time.time()
    slot = t + 3600
    store.write(
        [
            FlowRunCreated("5" * 32, "served", "served-5555", {}, None, t, scheduled_time=slot),
            StateChanged("5" * 32, None, State(S.SCHEDULED, t)),
        ]
    )
    shown = page(PanelModel(store)).runs.source.data
    assert shown["state"] == ["SCHEDULED"]
    assert shown["start"][0].timestamp() == pytest.approx(slot)


def test_update_sends_nothing_when_nothing_changed(recorded):
    built = page(PanelModel(recorded.store))
    changes: list[str] = []
    for view in built.views():
        for name in ("source", "bins"):
            source = getattr(view, name, None)
            if source is not None and type(view) is not ResourcesView:
                source.on_change("data", lambda attr, old, new, n=name: changes.append(n))
    built.refresh()
    built.refresh()
    assert changes == []


def test_a_settled_run_is_read_once(recorded):
    spy = Spy(recorded.store)
    ended = recorded.ok.end_time
    model = PanelModel(spy, clock=lambda: ended + 60)  # long after both runs ended
    model.select(recorded.ok.id)
    built = page(model)
    assert "list_task_runs" in spy.calls
    spy.calls.clear()
    built.refresh()
    assert sorted(spy.calls) == ["list_flow_runs", "list_logs"]
    assert len(built.timeline.source.data["lane"]) == 51  # still shown


def test_a_run_whose_last_records_come_late_is_counted_again(tmp_path):
    """Counts read while the run ran are not kept as settled when its end arrives later
    than SETTLED_AFTER past the end time its own clock gave (a loaded writer, a slow worker)."""
    store = SQLStore(str(tmp_path / "runs.db"))
    events = finished_run("d" * 32, time.time() - 100)  # ended 99 s ago, by its clock
    store.write(events[:2])  # created, RUNNING
    model = PanelModel(store)
    model.refresh()
    assert model.run_counts["d" * 32] == {}
    store.write(events[2:])  # its task run, then COMPLETED: long after that end time
    model.refresh()
    assert model.run_counts["d" * 32] == {"step": {S.COMPLETED: 1}}
    store.close()


# -- a big run -----------------------------------------------------------------------
def test_a_run_of_100_000_task_runs_stays_aggregated(big):
    built = page(PanelModel(big.store))
    model = built.model
    assert model.selected == big.id
    assert model.total == 100_000 > TIMELINE_LIMIT
    assert model.task_runs == []  # never read one by one
    progress = built.progress.source.data
    assert progress["task"] == ["extract", "load", "transform"]
    for i, name in enumerate(progress["task"]):
        expected = big.expected[name]
        assert progress["completed"][i] == expected[S.COMPLETED]
        assert progress["failed"][i] == expected[S.FAILED]
        assert progress["running"][i] == expected[S.RUNNING]
        assert progress["pending"][i] == expected[S.PENDING]
    assert built.runs.source.data["tasks"] == ["98,901 / 99 / 100,000"]

    spans = built.timeline.source.data  # a pale bar per task name
    assert spans["lane"] == ["extract", "load", "transform"]
    assert spans["name"][0] == "extract (33,334 runs)"
    cells = built.timeline.bins.data  # counts per task name, time bin and state
    assert sum(cells["count"]) == 99_500  # every started run, once
    by_state = Counter()
    for state, count in zip(cells["state"], cells["count"], strict=True):
        by_state[state] += count
    assert by_state == {"COMPLETED": 98_901, "FAILED": 99, "RUNNING": 500}
    assert len(set(zip(cells["lane"], cells["start"], strict=True))) <= TIMELINE_CELLS
    assert "counted per task" in built.timeline.title.text

    failures = built.failures.source.data
    assert len(failures["name"]) == 99
    assert set(failures["error_type"]) == {"ValueError"}
    sizes = {
        f"{type(view).__name__}.{name}": rows(getattr(view, name))
        for view in built.views()
        for name in ("source", "bins")
        if hasattr(view, name)
    }
    assert max(sizes.values()) < 5_000, sizes  # nothing scales with the task runs


def test_a_big_run_is_drawn_from_bins_that_hold_every_started_run(big):
    model = PanelModel(big.store)
    model.refresh()
    histogram = model.histogram
    assert histogram is not None
    assert histogram.bins * len(model.counts) <= TIMELINE_CELLS
    assert sum(r.count for r in histogram.rows if r.bin is not None) == 99_500
    assert sum(r.count for r in histogram.rows if r.bin is None) == 500  # pending
    first, last = histogram.edges(0)[0], histogram.edges(histogram.bins - 1)[1]
    run = model.run
    assert run is not None
    assert first == run.start_time
    assert last == pytest.approx(time.time(), abs=5)  # a live run's bins reach now
    assert histogram.spans()["load"][0] == 33_333


# -- resources (recorded samples, cluster runs: tests/test_panel_resources.py) ----------
def test_resources_of_a_sync_run_say_none_were_recorded(recorded):
    built = page(PanelModel(recorded.store))
    assert built.resources.note.text.startswith("No worker resources were recorded")
    assert built.resources.source.data["worker"] == []
    assert not built.resources.plots.visible


def test_resources_from_a_real_scheduler(recorded):
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        built = page(PanelModel(recorded.store, scheduler=cluster.scheduler))
        built.refresh()
    assert built.model.resources is not None
    assert built.model.resources.memory > 0
    assert "Now: 1 worker(s)" in built.resources.note.text


# -- the page ------------------------------------------------------------------------
def test_make_document_lays_out_the_page_and_refreshes_it_live(recorded, tmp_path):
    path = str(tmp_path / "runs.db")
    store = SQLStore(path)
    store.write(finished_run("a" * 32, time.time() - 10))
    doc = Document()
    make_document(doc, store_url=path, refresh_ms=250)
    assert doc.title == "daskflow"
    [callback] = doc.session_callbacks
    assert callback.period == 250
    [table] = [t for t in doc.select({"type": DataTable}) if "flow" in t.source.data]
    assert table.source.data["id"] == ["a" * 32]
    store.write(finished_run("b" * 32, time.time() - 5))  # recorded while the page is open
    asyncio.run(callback.callback())
    assert table.source.data["id"] == ["b" * 32, "a" * 32]


def test_the_run_argument_selects_a_run_by_id_prefix(recorded):
    from daskflow.panel.serve import make_server

    holder: list[Any] = []
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())
        holder.append(make_server(port=0, store_url=recorded.path))
        ready.set()
        holder[0].io_loop.start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(30)
    server = holder[0]
    try:
        url = f"http://127.0.0.1:{server.port}/daskflow?run={recorded.ok.id[:8]}"
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.status == 200
        [session] = server.get_sessions("/daskflow")
        texts = [div.text for div in session.document.select({"type": Div})]
        assert any(f"<b>{recorded.ok.name}</b> (panel-ok): COMPLETED" in t for t in texts)
    finally:
        server.io_loop.add_callback(server.stop)
        server.io_loop.add_callback(server.io_loop.stop)
        thread.join(30)


# -- helpers -------------------------------------------------------------------------
def seen_at(t: float) -> Any:
    """A seen mark, in memory, at ``t``."""
    from daskflow.panel.seen import SeenMark

    mark = SeenMark(None)
    mark.write(t)
    return mark


def finished_run(fid: str, t: float, state: S = S.COMPLETED, flow: str = "etl") -> list[Event]:
    """A flow run of one task run, ended in ``state`` at ``t + 1``."""
    tid = f"{fid}-step"
    return [
        FlowRunCreated(fid, flow, f"run-{fid[:4]}", {}, None, t),
        StateChanged(fid, None, State(S.RUNNING, t), 1),
        TaskRunCreated(tid, fid, "step", "step-0", None, frozenset(), 0, t),
        StateChanged(fid, tid, State(S.RUNNING, t + 0.1), 1, "w1"),
        StateChanged(fid, tid, State(S.COMPLETED, t + 0.5), 1, "w1"),
        StateChanged(fid, None, State(state, t + 1, message=f"{state.value} at the end"), 1),
    ]


class Spy:
    """A store that names every query it answers, and refuses writes (the panel only reads)."""

    def __init__(self, store: SQLStore) -> None:
        self.store, self.url, self.calls = store, store.url, []

    def __getattr__(self, name: str) -> Any:
        if name in ("write", "heartbeat", "mark_crashed"):
            raise AssertionError(f"the panel called {name}")
        self.calls.append(name)
        return getattr(self.store, name)

"""The run page's views and layout on a real SQLite store: logs, parameters, tracebacks,
empty states, the alerts' seen mark, and the page's sections.

As in ``test_panel_components.py``: runs are written to a store as events (or
run for real where what the store holds is the point), views are put in a
Bokeh ``Document`` so that widget callbacks fire, then ``update()`` and the
sources and Divs are read.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import dask
import pytest
from bokeh.document import Document
from bokeh.models import Tabs
from bokeh.models.widgets import Div

from daskflow import flow, task
from daskflow.observers.events import FlowRunCreated, LogEmitted
from daskflow.panel import PanelModel, make_document
from daskflow.panel.layout import PAGES, SECTIONS, RunPage
from daskflow.panel.seen import FIRST_LOOK, SeenMark
from daskflow.panel.views import FailuresView, LogsView, ParametersView, RunsView
from daskflow.panel.views.traceback import parse, to_html
from daskflow.states import StateType
from daskflow.store.sql import SQLStore
from daskflow.tracebacks import _PACKAGE
from tests.test_panel_components import finished_run, seen_at

S = StateType


def logged_run(fid: str, t: float, message: str, parameters: dict | None = None) -> list:
    """A finished flow run (one task run) with one log record of the flow."""
    events = finished_run(fid, t)
    events[0] = FlowRunCreated(fid, "etl", f"run-{fid[:4]}", parameters or {}, None, t)
    return [*events, LogEmitted(fid, None, t + 0.2, 20, "daskflow.flow", message)]


def views(model: PanelModel, *kinds: type) -> SimpleNamespace:
    """``kinds`` of views of ``model`` in one document, updated once."""
    doc = Document()
    made = [kind(model) for kind in kinds]
    for view in made:
        doc.add_root(view.root)
    built = SimpleNamespace(model=model, views=made, **{type(v).__name__: v for v in made})

    def refresh() -> None:
        model.refresh()
        for view in made:
            view.update()

    built.refresh = refresh
    refresh()
    return built


# -- logs ----------------------------------------------------------------------------
def test_the_logs_follow_the_selection_to_a_run_recorded_after_the_page_opened(tmp_path):
    store = SQLStore(str(tmp_path / "runs.db"))
    t = time.time() - 60
    store.write(logged_run("a" * 32, t, "records of A"))
    store.write(logged_run("c" * 32, t + 1, "records of C"))
    built = views(PanelModel(store), RunsView, LogsView)
    runs, logs = built.RunsView, built.LogsView
    assert logs.source.data["message"] == ["records of C"]  # following the newest
    runs.source.selected.indices = [1]  # the user picks A: the page stops following
    built.refresh()
    assert logs.source.data["message"] == ["records of A"]
    long = "B " + "wraps " * 200
    store.write(logged_run("b" * 32, t + 10, long))  # B, recorded after the page opened
    built.refresh()
    assert logs.source.data["message"] == ["records of A"]  # still A: the user chose it
    runs.source.selected.indices = [runs.source.data["id"].index("b" * 32)]
    built.refresh()
    assert logs.source.data["message"] == [long]
    assert "records of A" not in logs.table.text
    assert long.strip() in logs.table.text  # whole, not cut ...
    assert "white-space:pre-wrap" in logs.table.text  # ... and wrapped
    assert logs.source.data["task"] == ["(flow)"]
    assert logs.source.data["level"] == ["INFO"]


def test_a_click_during_a_refresh_in_a_thread_is_not_undone(tmp_path):
    """The page reads the store in a thread; a run picked meanwhile stays picked."""
    store = SQLStore(str(tmp_path / "runs.db"))
    t = time.time() - 60
    for n, fid in enumerate(("a" * 32, "b" * 32)):
        store.write(logged_run(fid, t + n, f"records of {fid[0]}"))
    reading, release = threading.Event(), threading.Event()

    class Slow:
        def __getattr__(self, name: str):
            if name == "list_flow_runs":
                reading.set()
                release.wait(10)
            return getattr(store, name)

    model = PanelModel(Slow(), seen=seen_at(t))  # type: ignore[arg-type]
    model.refresh()
    reading.clear()
    model.select("b" * 32)
    refresh = threading.Thread(target=model.refresh_store)
    refresh.start()
    assert reading.wait(10)
    model.select("a" * 32)  # a click while the thread reads the store
    release.set()
    refresh.join(10)
    assert model.selected == "a" * 32
    model.refresh_store()
    assert model.run is not None
    assert model.run.id == "a" * 32
    assert [r.message for r in model.logs] == ["records of a"]


def test_a_run_without_logs_says_so(tmp_path):
    store = SQLStore(str(tmp_path / "runs.db"))
    store.write(finished_run("a" * 32, time.time() - 60))
    logs = views(PanelModel(store), LogsView).LogsView
    assert logs.note.text == "This flow run has no log records yet."
    assert logs.note.visible
    assert not logs.table.visible


# -- parameters ----------------------------------------------------------------------
def test_the_parameters_of_the_run_show_as_json(tmp_path):
    store = SQLStore(str(tmp_path / "runs.db"))
    t = time.time() - 60
    given = {"day": "2026-12-01", "limit": 5, "columns": ["amount", "<b>"]}
    store.write(logged_run("a" * 32, t, "x", given))
    store.write(logged_run("b" * 32, t + 1, "y"))
    model = PanelModel(store)
    model.select("a" * 32)
    parameters = views(model, ParametersView).ParametersView
    assert parameters.source.data == {
        "name": ["day", "limit", "columns"],
        "value": ['"2026-12-01"', "5", '["amount", "<b>"]'],
    }
    assert "&lt;b&gt;" in parameters.table.text  # user data, escaped
    assert not parameters.note.visible
    model.select("b" * 32)
    model.refresh()
    parameters.update()
    assert parameters.source.data == {"name": [], "value": []}
    assert parameters.note.text == "This flow run was called without parameters."
    assert not parameters.table.visible


# -- failures and tracebacks ---------------------------------------------------------
def test_a_healthy_run_says_no_task_run_failed_instead_of_an_empty_table(tmp_path):
    store = SQLStore(str(tmp_path / "runs.db"))
    store.write(finished_run("a" * 32, time.time() - 60))
    failures = views(PanelModel(store), FailuresView).FailuresView
    assert failures.note.text == "No task run failed."
    assert not failures.table.visible
    assert not failures.traceback.visible


@task
def parse_amount(row: dict) -> int:
    return int(row["amount"])


@flow(name="panel-etl")
def etl() -> list[int]:
    return parse_amount.map([{"amount": 1}, {"x": 2}])


def test_a_task_failing_on_a_two_process_cluster_reads_like_the_users_code(tmp_path):
    from distributed import Client, LocalCluster

    path = str(tmp_path / "runs.db")
    with (
        dask.config.set({"daskflow.store": path, "daskflow.progress": False}),
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster),
    ):
        assert etl(return_state=True).type is S.FAILED
    failures = views(PanelModel(SQLStore(path)), FailuresView).FailuresView
    [recorded] = failures.source.data["traceback"]
    here = os.path.abspath(__file__)
    assert f'File "{here}"' in recorded  # the store holds the user's file and line ...
    assert _PACKAGE not in recorded  # ... and none of daskflow's frames
    html = failures.traceback.text
    assert html.index("KeyError: 'amount'") < html.index(here)  # the error first
    assert f"<b>{here}</b>, line <b>" in html
    assert "<details" not in html  # nothing to fold
    assert failures.table.visible
    assert not failures.note.visible


OLD_RECORD = f'''Traceback (most recent call last):
  File "{_PACKAGE}engine/attempts.py", line 210, in run_attempt
    return fn(*args, **kwargs)
  File "{_PACKAGE}engine/runner.py", line 88, in call
    result = task.fn(**arguments)
  File "<dynamic-code>", line 12, in transform
  File "/home/me/etl.py", line 7, in parse
    return int(row["amount"])
           ~~~^^^^^^^^^^
KeyError: 'amount'
'''


def test_an_old_record_folds_daskflows_frames_and_shows_the_users_first():
    frames = [item for item in parse(OLD_RECORD) if not isinstance(item, str)]
    assert [f.internal for f in frames] == [True, True, False, False]
    assert frames[3].body == ['return int(row["amount"])', "       ~~~^^^^^^^^^^"]
    html = to_html(OLD_RECORD)
    error, rest = html.split("</div>", 1)
    assert "KeyError: 'amount'" in error
    folded, shown = rest.split("</details>")
    assert "2 frames of daskflow/Dask (click to show)" in folded
    assert "attempts.py" in folded
    assert "runner.py" in folded
    assert _PACKAGE not in shown
    assert "code sent by value (its file is unknown), line <b>12</b>, in transform" in shown
    assert "<b>/home/me/etl.py</b>, line <b>7</b>, in parse" in shown


# -- alerts and the seen mark --------------------------------------------------------
def test_a_failure_recorded_before_the_page_opened_raises_an_alert(tmp_path):
    store = SQLStore(str(tmp_path / "runs.db"))
    t = time.time()
    store.write(finished_run("0" * 32, t - 2 * FIRST_LOOK, S.FAILED))  # long ago
    store.write(finished_run("1" * 32, t - 600, S.FAILED))  # while no page was open
    model = PanelModel(store)  # no mark yet: the last day
    model.refresh()
    assert [r.id for r in model.alerts] == ["1" * 32]
    model.dismiss_alerts()
    assert model.alerts == []
    again = PanelModel(SQLStore(str(tmp_path / "runs.db")))  # a page opened later
    again.refresh()
    assert again.alerts == []
    store.write(finished_run("2" * 32, time.time() + 1, S.CRASHED))
    again.refresh()
    assert [r.id for r in again.alerts] == ["2" * 32]


def test_the_seen_mark_is_an_owner_only_file_beside_a_sqlite_store(tmp_path, monkeypatch):
    store = SQLStore(str(tmp_path / "runs.db"))
    mark = SeenMark.for_store(store)
    assert mark.path == Path(f"{tmp_path / 'runs.db'}.panel-seen")
    assert mark.read() is None
    mark.write(1234.5)
    assert SeenMark.for_store(store).read() == 1234.5
    assert mark.path.stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    remote = SeenMark.for_store(SimpleNamespace(url="postgresql://db.example/runs"))
    assert remote.path is not None
    assert remote.path.parent == tmp_path / "state" / "daskflow"
    assert SeenMark.for_store(SimpleNamespace(url="memory")).path is None


# -- the page ------------------------------------------------------------------------
def test_the_run_page_has_a_tab_per_section_and_says_when_there_is_no_run(tmp_path):
    doc = Document()
    make_document(doc, store_url=str(tmp_path / "runs.db"))
    by_titles = {tuple(panel.title for panel in t.tabs): t for t in doc.select({"type": Tabs})}
    assert set(by_titles) == {PAGES, SECTIONS}  # the two pages, and the run page's sections
    tabs = by_titles[SECTIONS]
    assert not tabs.visible  # no run: one sentence instead of empty tabs
    texts = [m.text for m in doc.select({"type": Div})]
    assert any("No flow run is recorded in this run store yet" in t for t in texts)
    assert any("No deployment is recorded in this run store" in t for t in texts)


def test_a_run_page_refuses_an_unknown_section(tmp_path):
    model = PanelModel(SQLStore(str(tmp_path / "runs.db")))
    with pytest.raises(ValueError, match="unknown sections"):
        RunPage(model, Div(), {"gallery": Div()})
    page = RunPage(model, Div(), {"overview": Div(text="hi")})
    model.refresh()
    page.update()
    assert [p.title for p in page.tabs.tabs] == list(SECTIONS)

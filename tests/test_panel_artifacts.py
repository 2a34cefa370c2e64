"""The run page's artifacts tab on a real SQLite store: ``update()``, then the Bokeh models.

Artifacts are made by real flow runs (tasks on a two-process cluster, where
the artifacts travel from the workers with the run's events), or written to
the store as the engine writes them where a run must stay live while the
test looks (a progress artifact updated in place).
"""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import dask
import pytest
from bokeh.document import Document
from bokeh.models.widgets import DataTable, Div

from daskflow import flow, task
from daskflow.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from daskflow.observers.events import (
    ArtifactCreated,
    ArtifactUpdated,
    FlowRunCreated,
    StateChanged,
)
from daskflow.panel import PanelModel
from daskflow.panel.artifacts import ARTIFACTS_SHOWN, RunArtifacts
from daskflow.panel.views import ArtifactsView
from daskflow.states import State, StateType
from daskflow.store.sql import SQLStore
from tests.test_panel_components import finished_run

S = StateType

REPORT = """# Daily load

Loaded **1,204** rows. <script>alert('owned')</script>

[a trap](javascript:alert(1)) and [the source](https://example.com/data)
"""


@task
def load_report(day: int) -> int:
    create_markdown_artifact(REPORT, key="load-report", description="what the load did")
    create_table_artifact(
        [{"region": "eu", "sales": 12.5}, {"region": "<b>us</b>", "sales": 30.0}],
        key="sales-by-region",
    )
    return day


@task
def publish(day: int) -> None:
    create_link_artifact("https://reports.example.com/daily", "the daily report", key="report-link")
    create_markdown_artifact(f"day {day}: done")  # no key: shown with its run only


@flow(name="panel-artifacts")
def reporting(days: int) -> None:
    progress = create_progress_artifact(0.0, key="load-progress")
    create_markdown_artifact("# First draft", key="load-report")  # an older version of the key
    publish.map(load_report.map(range(days)))
    update_progress_artifact(progress, 100.0)


def shown(store: SQLStore, flow_run_id: str | None = None) -> SimpleNamespace:
    """The artifacts view of ``flow_run_id`` (else the newest run) in a document, updated."""
    model = PanelModel(store)
    if flow_run_id is not None:
        model.select(flow_run_id)
    reader = RunArtifacts(model)
    view = ArtifactsView(reader)
    Document().add_root(view.root)

    def refresh() -> None:
        model.refresh()
        reader.refresh()
        view.update()

    refresh()
    return SimpleNamespace(model=model, reader=reader, view=view, refresh=refresh)


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory, processes_client) -> SimpleNamespace:
    path = str(tmp_path_factory.mktemp("panel-artifacts") / "runs.db")
    with pytest.MonkeyPatch.context() as mp, dask.config.set({"daskflow.store": path}):
        mp.setenv("DASKFLOW_STORE", path)
        state = reporting.with_options(cluster=processes_client)(2, return_state=True)
        assert state.type is S.COMPLETED
    store = SQLStore(path)
    [run] = store.list_flow_runs(limit=1)
    yield SimpleNamespace(store=store, run=run)
    store.close()


def test_the_newest_artifact_of_each_key_shows_with_the_task_run_that_made_it(reported):
    page = shown(reported.store)
    data = page.view.source.data
    keys = data["key"]
    # two load_report task runs each made "load-report" and "sales-by-region": the newest
    # shows; two keyless markdown artifacts (one per publish) both show
    assert sorted(keys) == sorted(
        ["load-progress", "load-report", "sales-by-region", "report-link", "(no key)", "(no key)"]
    )
    report = data["id"][keys.index("load-report")]
    assert data["task"][keys.index("load-report")] == "load_report"  # not the flow's first draft
    assert data["task"][keys.index("load-progress")] == "(flow)"
    assert data["task"][keys.index("report-link")] == "publish"
    block = page.view.blocks[report]
    assert "load_report" in block.heading.text
    assert "task run" in block.heading.text
    assert "what the load did" in block.heading.text  # its description
    created = data["created"]
    assert created == sorted(created, reverse=True)  # newest first


def test_markdown_is_rendered_with_the_users_html_escaped_and_unsafe_links_unlinked(reported):
    page = shown(reported.store)
    keys = page.view.source.data["key"]
    block = page.view.blocks[page.view.source.data["id"][keys.index("load-report")]]
    assert isinstance(block.content, Div)
    text = block.content.text
    assert "<h1>Daily load</h1>" in text
    assert "<strong>1,204</strong>" in text
    assert "<script>" not in text  # the user's HTML is text, not markup
    assert "&lt;script&gt;" in text
    assert 'href="https://example.com/data"' in text
    assert 'href="javascript' not in text  # not linked
    assert "a trap" in text


def test_a_table_is_a_data_table_a_link_a_link_and_progress_a_bar(reported):
    page = shown(reported.store)
    data = page.view.source.data
    blocks = {key: page.view.blocks[i] for key, i in zip(data["key"], data["id"], strict=True)}
    table = blocks["sales-by-region"].content
    assert isinstance(table, DataTable)
    assert [c.title for c in table.columns] == ["region", "sales"]
    rows = table.source.data
    assert rows[table.columns[0].field] == ["eu", "<b>us</b>"]  # a DataTable shows text as text
    assert rows[table.columns[1].field] == ["12.5", "30.0"]
    link = blocks["report-link"].content.text
    assert '<a href="https://reports.example.com/daily"' in link
    assert "the daily report" in link
    progress = blocks["load-progress"].content.text
    assert "width:100.0%" in progress  # updated in place to 100 by the flow
    assert "100%" in progress


def test_a_run_without_artifacts_says_so_in_one_sentence(tmp_path):
    store = SQLStore(str(tmp_path / "runs.db"))
    store.write(finished_run("a" * 32, time.time() - 10))
    page = shown(store)
    assert page.view.source.data["id"] == []
    assert "This flow run has no artifacts" in page.view.note.text
    assert page.view.note.visible
    assert page.view.root.children == [page.view.note, page.view.more]  # no block


def artifact_events(fid: str, t: float) -> list:
    progress = ArtifactCreated(fid, None, "p" * 32, "copy", "progress", "10.0", "copying", t + 1)
    table = json.dumps({"file": ["a.csv", "b.csv"], "rows": [3, 4]})
    files = ArtifactCreated(fid, None, "f" * 32, "files", "table", table, None, t + 2)
    return [progress, files]


def test_a_live_runs_artifacts_appear_and_progress_moves_in_place(tmp_path):
    store = SQLStore(str(tmp_path / "runs.db"))
    fid, t = "c" * 32, time.time() - 5
    store.write(
        [
            FlowRunCreated(fid, "copy", "copy-run", {}, None, t),
            StateChanged(fid, None, State(S.RUNNING, t), 1),
        ]
    )
    page = shown(store)
    assert "no artifacts" in page.view.note.text
    store.write(artifact_events(fid, t))  # recorded while the page is open
    page.refresh()
    assert page.view.source.data["key"] == ["files", "copy"]
    block = page.view.blocks["p" * 32]
    assert "width:10.0%" in block.content.text
    store.write([ArtifactUpdated(fid, None, "p" * 32, "55.5", None, t + 3)])
    page.refresh()
    assert page.view.blocks["p" * 32] is block  # the same block, its content changed
    assert "width:55.5%" in block.content.text
    assert "55.5%" in page.view.source.data["summary"][1]


def test_at_most_the_newest_artifacts_show_and_the_page_says_there_are_more(tmp_path):
    store = SQLStore(str(tmp_path / "runs.db"))
    fid, t = "d" * 32, time.time() - 100
    events = finished_run(fid, t)
    events += [
        ArtifactCreated(
            fid, None, f"{i:032x}", f"k{i}", "markdown", json.dumps(f"n{i}"), None, t + i / 100
        )
        for i in range(ARTIFACTS_SHOWN + 5)
    ]
    store.write(events)
    page = shown(store)
    assert len(page.view.source.data["id"]) == ARTIFACTS_SHOWN
    assert page.view.source.data["key"][0] == f"k{ARTIFACTS_SHOWN + 4}"  # the newest
    assert page.view.more.visible
    assert "the run has more" in page.view.more.text


def test_the_tab_follows_the_selected_run(reported):
    page = shown(reported.store, reported.run.id)
    assert page.view.source.data["id"]
    page.model.select("0" * 32)  # a run not in the store
    page.refresh()
    assert page.view.source.data["id"] == []
    assert page.view.blocks == {}
    assert page.view.root.children == [page.view.note, page.view.more]


def test_the_served_page_with_artifacts_passes_bokehs_checks(reported):
    from bokeh.core.validation import check_integrity

    from daskflow.panel import make_document

    doc = Document()
    make_document(doc, store_url=reported.store.url)
    issues = check_integrity(list(doc.models))
    assert issues.error == []
    assert issues.warning == []  # such as an empty layout, which Bokeh logs as a warning

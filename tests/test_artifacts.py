"""Artifacts: made in flows and tasks on every cluster, recorded, read back and shown.

Flows come from ``tests/resources/artifact_flows.py`` and run on the
``cluster`` fixture (``"sync"``, an in-process ``LocalCluster`` and one of
two worker processes, whose artifacts travel with their event batches).
Each test records into a SQLite store of its own. Store-level tests take the
``store`` fixture of ``tests/test_store.py`` (memory, SQLite, PostgreSQL when
configured); the CLI runs as real subprocesses.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa

from daskflow import DaskflowError, flow, get_run, runs, task
from daskflow.artifacts import (
    ArtifactError,
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    read_artifacts,
    update_progress_artifact,
)
from daskflow.history import Artifact
from daskflow.observers.events import ArtifactCreated, ArtifactUpdated
from daskflow.store import RunStore, SQLStore, default_observer
from daskflow.store.journal import decode, encode
from daskflow.store.schema import SCHEMA_VERSION
from tests.resources.artifact_flows import report
from tests.test_durability import Lock
from tests.test_store import a_flow_run, store_fixture  # noqa: F401  (the store fixture)

RESOURCES = Path(__file__).parent / "resources"
FLOWS = RESOURCES / "artifact_flows.py"


@pytest.fixture(autouse=True)
def store_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh store for each test: the engine records into it, reads come from it."""
    path = tmp_path / "artifacts.db"
    monkeypatch.setenv("DASKFLOW_STORE", str(path))  # for the CLI's subprocesses
    settings = {"daskflow.store": str(path), "daskflow.journal": str(tmp_path / "journal")}
    with dask.config.set(settings):
        yield path
        with dask.config.set({"daskflow.store": "none"}):
            default_observer()  # closes this test's store


@pytest.fixture
def tag() -> str:
    """A suffix making this test's keys its own."""
    return uuid.uuid4().hex[:8]


def by_key(artifacts: list[Artifact]) -> dict[str | None, list[Artifact]]:
    found: dict[str | None, list[Artifact]] = {}
    for artifact in artifacts:
        found.setdefault(artifact.key, []).append(artifact)
    return found


# -- made in flows and tasks, on every cluster ----------------------------------------------
def test_artifacts_of_every_type_reach_the_store_from_every_cluster(cluster, tag):
    assert report.with_options(cluster=cluster)(tag) == 60
    [run] = runs(flow="report")
    found = by_key(run.artifacts)
    task_runs = {t.id: t.task_name for t in run.task_runs}
    assert all(a.flow_run_id == run.id for a in run.artifacts)

    parts = sorted(found[f"part-report-{tag}"], key=lambda a: a.description or "")
    assert [a.data for a in parts] == [
        f"# Part {i}\n\n**{i * 10}** rows loaded" for i in (1, 2, 3)
    ]  # made on the workers, each against its own task run
    assert [a.description for a in parts] == ["part 1", "part 2", "part 3"]
    assert all(a.type == "markdown" and a.task_name == "summarize" for a in parts)
    assert all(task_runs[a.task_run_id] == "summarize" for a in parts if a.task_run_id)

    [progress] = found[f"load-progress-{tag}"]  # updated in place, from the flow and a task
    assert (progress.type, progress.data, progress.description) == ("progress", 100.0, "loading")
    assert progress.task_run_id is None  # the flow function made it
    assert progress.updated > progress.created
    [made] = found[f"task-progress-{tag}"]  # made in a task, updated by the flow at once
    assert (made.data, made.task_name) == (75.0, "make_progress")

    [rows] = found[f"rows-{tag}"]
    assert rows.data == [{"part": 1, "rows": 10}, {"part": 2, "rows": 20}, {"part": 3, "rows": 30}]
    assert rows.description == "rows per part"
    [columns] = found[f"columns-{tag}"]
    assert columns.data == {"name": ["a", "b"], "score": [1.5, None]}
    [link] = found[f"link-{tag}"]
    assert (link.type, link.data) == (
        "link",
        {"link": "https://example.com/report", "link_text": "the report"},
    )
    [keyless] = found[None]
    assert (keyless.type, keyless.data) == ("markdown", "no key: shown with its run only")
    assert isinstance(keyless.created, datetime)
    assert keyless.created.tzinfo is UTC
    uuid.UUID(keyless.id)  # ids are UUIDs


def test_the_create_functions_return_the_artifact_s_id(tag):
    ids: dict[str, str] = {}

    @flow(name="ids", cluster="sync")
    def ids_flow() -> None:
        ids["md"] = create_markdown_artifact("m", key=f"m-{tag}")
        ids["table"] = create_table_artifact([{"a": 1}], key=f"t-{tag}")
        ids["link"] = create_link_artifact("https://example.com", key=f"l-{tag}")
        ids["progress"] = create_progress_artifact(10, key=f"p-{tag}")
        assert update_progress_artifact(uuid.UUID(ids["progress"]), 20) == ids["progress"]

    ids_flow()
    recorded = {a.type: a for a in get_run(runs(flow="ids")[0].id).artifacts}
    assert {kind: a.id for kind, a in recorded.items()} == {
        "markdown": ids["md"],
        "table": ids["table"],
        "link": ids["link"],
        "progress": ids["progress"],
    }
    assert recorded["link"].data == {"link": "https://example.com", "link_text": None}
    assert recorded["progress"].data == 20.0


def test_a_key_s_history_and_the_latest_of_each_key(tag):
    sync_report = report.with_options(cluster="sync")
    sync_report(tag, 2)
    first = {a.key: a for a in read_artifacts(latest=True, limit=None)}
    sync_report(tag, 3)
    latest = read_artifacts(latest=True, limit=None)
    [second, _] = runs(flow="report")

    keys = [a.key for a in latest]
    assert len(keys) == len(set(keys)) == 6  # one per key; keyless artifacts left out
    assert all(a.flow_run_id == second.id for a in latest)
    assert {a.key for a in latest} == set(first)
    history = read_artifacts(f"part-report-{tag}")
    assert len(history) == 5  # 2 of the first run, 3 of the second
    assert [a.created for a in history] == sorted((a.created for a in history), reverse=True)
    assert read_artifacts(f"part-report-{tag}", limit=2) == history[:2]
    progress = read_artifacts(f"load-progress-{tag}")
    assert [a.data for a in progress] == [100.0, 100.0]  # one per run, each updated in place
    assert read_artifacts("no-such-key") == []


def test_artifacts_made_outside_any_run_are_recorded_without_a_run(store_path):
    artifact_id = create_markdown_artifact("from a script", key="outside")
    [artifact] = read_artifacts("outside")
    assert artifact.id == artifact_id
    assert (artifact.flow_run_id, artifact.task_run_id, artifact.task_name) == (None, None, None)
    update_progress_artifact(create_progress_artifact(5, key="outside-progress"), 15)
    assert read_artifacts("outside-progress")[0].data == 15.0

    with dask.config.set({"daskflow.store": "none"}):
        assert uuid.UUID(create_markdown_artifact("recorded nowhere", key="nowhere"))
    assert read_artifacts("nowhere") == []


# -- checks -------------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["Daily", "daily report", "daily_report", "", "é", "x" * 256])
def test_a_bad_key_is_a_clear_error(key):
    with pytest.raises(ArtifactError, match="lowercase letters, digits and dashes") as info:
        create_markdown_artifact("text", key=key)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, DaskflowError)
    assert repr(key) in str(info.value)


def test_other_bad_input_is_a_clear_error():
    with pytest.raises(ArtifactError, match="a key is a string, not int"):
        create_table_artifact([], key=3)  # type: ignore[arg-type]
    with pytest.raises(ArtifactError, match="markdown must be a string"):
        create_markdown_artifact(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(ArtifactError, match="progress must be a number"):
        create_progress_artifact("half")  # type: ignore[arg-type]
    with pytest.raises(ArtifactError, match="not NaN"):
        create_progress_artifact(math.nan)
    with pytest.raises(ArtifactError, match="progress must be a number"):
        create_progress_artifact(True)
    with pytest.raises(ArtifactError, match="not an artifact id"):
        update_progress_artifact("not-an-id", 50)


def test_a_bad_key_fails_the_task_that_gave_it():
    @task
    def badly_keyed() -> None:
        create_markdown_artifact("x", key="Bad Key")

    @flow(name="bad-key", cluster="sync")
    def bad_key() -> None:
        badly_keyed()

    with pytest.raises(ArtifactError, match="'Bad Key'"):
        bad_key()


def test_a_progress_outside_0_to_100_is_clamped_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="daskflow.artifacts"):
        progress = create_progress_artifact(-5, key="clamped")
        update_progress_artifact(progress, 250)
    assert read_artifacts("clamped")[0].data == 100.0
    told = [r.getMessage() for r in caplog.records if r.name == "daskflow.artifacts"]
    assert len(told) == 2
    assert "-5 is not from 0 to 100; recorded as 0" in told[0]


def test_tables_of_every_shape_are_stored_as_json():
    frame = pd.DataFrame(
        {
            "amount": [1.5, np.nan, np.inf],
            "when": pd.to_datetime(["2024-01-01", "2024-01-02", None]),
            "n": np.array([1, 2, 3], dtype=np.int64),
        },
        index=pd.Index(["a", "b", "c"], name="day"),
    )
    create_table_artifact(frame, key="frame")
    assert read_artifacts("frame")[0].data == [
        {"day": "a", "amount": 1.5, "when": "2024-01-01T00:00:00.000", "n": 1},
        {"day": "b", "amount": None, "when": "2024-01-02T00:00:00.000", "n": 2},
        {"day": "c", "amount": None, "when": None, "n": 3},
    ]  # a named index is a column; NaN, infinity and NaT are null
    filtered = pd.DataFrame({"x": [1, 2, 3]}).query("x > 1")
    create_table_artifact(filtered, key="plain-frame")
    assert read_artifacts("plain-frame")[0].data == [{"x": 2}, {"x": 3}]  # an unnamed index: not
    create_table_artifact(pa.table({"x": [1, None]}), key="arrow")
    assert read_artifacts("arrow")[0].data == [{"x": 1.0}, {"x": None}]
    create_table_artifact([[1, "a"], (2, float("nan"))], key="rows")
    assert read_artifacts("rows")[0].data == [[1, "a"], [2, None]]
    columns = {"v": np.array([0.5, np.nan]), "n": pd.Series([np.int64(7), np.int64(8)])}
    create_table_artifact(columns, key="columns")
    assert read_artifacts("columns")[0].data == {"v": [0.5, None], "n": [7, 8]}
    when = datetime(2024, 5, 1, 12, tzinfo=UTC)
    create_table_artifact([{"when": when, "what": {"nested": [1, math.inf]}}], key="values")
    assert read_artifacts("values")[0].data == [
        {"when": "2024-05-01T12:00:00+00:00", "what": {"nested": [1, None]}}
    ]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("a,b\n1,2", "a table is a list of dicts"),
        (42, "not int"),
        ({"a": 1}, "'a' holds int"),
        ({"a": [1, 2], "b": [1]}, r"differ in length \(a has 2, b has 1\)"),
        ([{"a": 1}, 2], "holds dicts"),
        (pd.DataFrame([[1, 2]], columns=["a", "a"]), "cannot be stored"),
    ],
)
def test_a_table_of_another_shape_is_a_clear_error(table, message):
    with pytest.raises(ArtifactError, match=message):
        create_table_artifact(table, key="bad-table")


def test_data_json_cannot_hold_is_a_clear_error():
    row: dict[str, Any] = {"a": 1}
    row["self"] = row
    with pytest.raises(ArtifactError, match="cannot be stored as JSON"):
        create_table_artifact([row], key="circular")
    assert read_artifacts("circular") == []


# -- the store ------------------------------------------------------------------------------
def _created(artifact_id: str, key: str | None, t: float, **kw: Any) -> ArtifactCreated:
    fields = {"flow_run_id": "f" * 32, "task_run_id": None, "type": "markdown", "data": '"x"'}
    fields.update(kw)
    return ArtifactCreated(
        fields["flow_run_id"],
        fields["task_run_id"],
        artifact_id,
        key,
        fields["type"],
        fields["data"],
        fields.get("description"),
        t,
    )


def test_a_progress_update_that_arrives_before_its_artifact_is_kept(store: RunStore):
    t = time.time()
    created = _created("a1", "load", t, type="progress", data="0.0", description="loading")
    store.write(a_flow_run("f" * 32, t, tasks=1))
    store.write([ArtifactUpdated("f" * 32, "f" * 32 + "-inc-0", "a1", "60.0", None, t + 2)])
    [early] = store.list_artifacts()  # kept before its creation arrived
    assert (early.key, early.type, early.data) == (None, "progress", "60.0")
    store.write([created, ArtifactUpdated("f" * 32, None, "a1", "30.0", "late", t + 1)])
    store.write([created])  # again: changes nothing
    [row] = store.list_artifacts(key="load")
    assert (row.id, row.key, row.type, row.data) == ("a1", "load", "progress", "60.0")
    assert (row.created, row.updated, row.description) == (t, t + 2, "loading")
    assert (row.flow_run_id, row.task_run_id) == ("f" * 32, None)
    store.write([ArtifactUpdated("f" * 32, None, "a1", "90.0", "almost", t + 3)])
    [row] = store.list_artifacts(artifact_id="a1")
    assert (row.data, row.description, row.updated) == ("90.0", "almost", t + 3)


def test_artifacts_are_listed_newest_first_by_run_key_and_latest(store: RunStore):
    t = time.time()
    tid = "f" * 32 + "-inc-0"
    store.write(
        [
            *a_flow_run("f" * 32, t, tasks=1),
            _created("k1-old", "k1", t + 1, task_run_id=tid),
            _created("k2", "k2", t + 2),
            _created("k1-new", "k1", t + 3),
            _created("keyless", None, t + 4),
        ]
    )
    store.write([_created("other", "k2", t + 5, flow_run_id="e" * 32)])
    ids = [r.id for r in store.list_artifacts()]
    assert ids == ["other", "keyless", "k1-new", "k2", "k1-old"]
    assert [r.id for r in store.list_artifacts(flow_run_id="f" * 32, limit=2)] == [
        "keyless",
        "k1-new",
    ]
    assert [r.id for r in store.list_artifacts(key="k1")] == ["k1-new", "k1-old"]
    assert [r.id for r in store.list_artifacts(latest=True)] == ["other", "k1-new"]
    assert [r.id for r in store.list_artifacts(latest=True, flow_run_id="f" * 32)] == [
        "k1-new",
        "k2",
    ]
    [old] = store.list_artifacts(artifact_id="k1-old")
    assert (old.task_run_id, old.task_name) == (tid, "inc")
    assert store.list_artifacts(artifact_id="missing") == []


def test_a_v4_store_is_upgraded_in_place_and_keeps_its_runs(tmp_path, tag):
    path = tmp_path / "v4.db"
    with sqlite3.connect(path) as conn:  # the layout daskflow wrote before artifacts
        conn.executescript((RESOURCES / "store_v4.sql").read_text())
    conn.close()

    store = SQLStore(str(path))
    [old] = store.list_flow_runs()
    assert (old.id, old.flow_name, old.entrypoint) == ("4" * 28 + "aaaa", "etl", "etl.py:etl")
    assert [log.message for log in store.list_logs(old.id)] == ["extracted 3 rows"]
    with store.engine.connect() as conn:
        version = conn.execute(sa.text("SELECT value FROM meta WHERE key = 'schema_version'"))
        assert version.scalar_one() == str(SCHEMA_VERSION)
        assert "artifacts" in sa.inspect(conn).get_table_names()
    assert store.list_artifacts(flow_run_id=old.id) == []
    store.close()

    with dask.config.set({"daskflow.store": str(path)}):
        report.with_options(cluster="sync")(tag)
        assert get_run(old.id).artifacts == []
        [new] = runs(flow="report")
        assert len(new.artifacts) == 9
        assert read_artifacts(f"rows-{tag}")[0].data[0] == {"part": 1, "rows": 10}


def test_artifacts_wait_in_the_journal_while_the_store_is_locked(store_path, tag):
    sync_report = report.with_options(cluster="sync")
    with dask.config.set({"daskflow.store-retry": "0.3s"}):
        sync_report(tag, 1)  # the store exists
        lock = Lock(store_path)
        lock.take()
        assert sync_report(tag, 2) == 30  # journaled
        observer = default_observer()
        assert observer is not None
        assert observer.journal.path is not None
        lock.release()
        with dask.config.set({"daskflow.store": "none"}):
            default_observer()  # this process ends: its journal waits for the next opener
    store = SQLStore(str(store_path))  # replays the journal
    [second, _] = store.list_flow_runs()
    assert len(store.list_artifacts(flow_run_id=second.id)) == 8
    [progress] = store.list_artifacts(flow_run_id=second.id, key=f"load-progress-{tag}")
    assert json.loads(progress.data) == 100.0  # its updates were journaled too
    store.close()


def test_artifact_events_survive_the_journal_s_format():
    events = [
        _created("a1", "k", 1.5, type="table", data='[{"a": 1}]', description="d"),
        ArtifactUpdated(None, None, "a1", "50.0", None, 2.5),
    ]
    assert [decode(json.loads(json.dumps(encode(e)))) for e in events] == events


# -- shown ----------------------------------------------------------------------------------
def test_the_notebook_card_shows_the_artifacts(tag):
    @flow(name="shown", cluster="sync")
    def shown() -> None:
        create_markdown_artifact("# Title\n\n<script>alert(1)</script>", key=f"md-{tag}")
        create_table_artifact({"city": ["Oslo", "<b>Rome</b>"]}, description="cities")
        create_link_artifact("javascript:alert(1)", "click", key=f"bad-link-{tag}")
        create_link_artifact("https://example.com/x?a=1&b=2", "good", key=f"link-{tag}")
        update_progress_artifact(create_progress_artifact(0, key=f"p-{tag}"), 42.5)

    shown()
    run = runs(flow="shown")[0]
    html = run._repr_html_()
    assert "5 artifacts" in html
    assert f"md-{tag}" in html
    assert "<h1>Title</h1>" in html  # markdown rendered
    assert "<script>" not in html  # raw HTML escaped
    assert "Oslo" in html
    assert "&lt;b&gt;Rome&lt;/b&gt;" in html
    assert "cities" in html
    assert 'href="javascript' not in html  # not a link
    assert 'href="https://example.com/x?a=1&amp;b=2"' in html
    assert "42.5%" in html
    [markdown] = [a for a in run.artifacts if a.type == "markdown"]
    assert "<h1>Title</h1>" in markdown._repr_html_()
    assert (
        repr(markdown)
        == f"<Artifact md-{tag} markdown of run {run.id[:8]}: 'Title', id {markdown.id[:8]}>"
    )


def test_the_card_shows_the_newest_ten_artifacts_of_a_big_run():
    @flow(name="many", cluster="sync")
    def many() -> None:
        for i in range(12):
            create_markdown_artifact(f"number {i}", key=f"n-{i}")

    many()
    [run] = runs(flow="many")
    html = run._repr_html_()
    assert "10+ artifacts" in html
    assert "number 11" in html
    assert "number 2" in html
    assert "number 1<" not in html
    assert "run.artifacts" in html
    assert len(run.artifacts) == 12
    assert [a.key for a in run.artifacts][:2] == ["n-0", "n-1"]  # oldest first


# -- the command line -----------------------------------------------------------------------
def daskflow(*args: str, store: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m daskflow.cli --store STORE ARGS``, printing 200 columns wide."""
    return subprocess.run(
        [sys.executable, "-m", "daskflow.cli", "--store", str(store), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", "DASKFLOW__PROGRESS": "false"},
        timeout=120,
        check=False,
    )


def test_the_cli_lists_and_shows_artifacts(tmp_path):
    store = tmp_path / "cli.db"
    empty = daskflow("artifacts", "list", store=store, cwd=tmp_path)
    assert empty.returncode == 0, empty.stderr
    assert "No artifacts recorded." in empty.stdout
    ran = daskflow(
        "run", f"{FLOWS}:report", "-p", "tag=cli", "--cluster", "sync", store=store, cwd=tmp_path
    )
    assert ran.returncode == 0, ran.stderr

    listed = daskflow("artifacts", "list", "--json", store=store, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    latest = json.loads(listed.stdout)
    assert sorted(a["key"] for a in latest) == sorted(
        f"{name}-cli"
        for name in ("part-report", "load-progress", "task-progress", "rows", "columns", "link")
    )
    assert all(a["flow_run_id"] and a["created"] for a in latest)
    table = daskflow("artifacts", "list", store=store, cwd=tmp_path).stdout
    assert "rows-cli" in table
    assert "3 rows, 2 columns" in table
    assert "100%" in table

    history = daskflow(
        "artifacts", "list", "--key", "part-report-cli", "--json", store=store, cwd=tmp_path
    )
    assert [a["task_name"] for a in json.loads(history.stdout)] == ["summarize"] * 3

    shown = daskflow("artifacts", "show", "rows-cli", store=store, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "rows per part" in shown.stdout
    lines = shown.stdout.splitlines()
    assert any("part" in line and "rows" in line for line in lines)  # the header
    assert any("3" in line and "30" in line for line in lines)  # a row
    progress = daskflow("artifacts", "show", "load-progress-cli", store=store, cwd=tmp_path)
    assert "100%" in progress.stdout
    link = daskflow("artifacts", "show", "link-cli", store=store, cwd=tmp_path)
    assert "the report" in link.stdout
    assert "https://example.com/report" in link.stdout
    markdown = daskflow("artifacts", "show", "part-report-cli", store=store, cwd=tmp_path)
    assert "Part 3" in markdown.stdout
    assert "**" not in markdown.stdout
    every = daskflow(
        "artifacts", "show", "part-report-cli", "--all", "--json", store=store, cwd=tmp_path
    )
    assert [a["description"] for a in json.loads(every.stdout)] == ["part 3", "part 2", "part 1"]
    one = daskflow("artifacts", "show", "columns-cli", "--json", store=store, cwd=tmp_path)
    assert json.loads(one.stdout)["data"] == {"name": ["a", "b"], "score": [1.5, None]}

    missing = daskflow("artifacts", "show", "no-such-key", store=store, cwd=tmp_path)
    assert missing.returncode == 2
    assert "artifact key 'no-such-key': none recorded in the run store" in missing.stderr
    for command in (["artifacts"], ["artifacts", "list"], ["artifacts", "show"]):
        helped = daskflow(*command, "--help", store=store, cwd=tmp_path)
        assert helped.returncode == 0
        assert "Usage: daskflow artifacts" in helped.stdout

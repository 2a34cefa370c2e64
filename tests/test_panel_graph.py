"""The run graph: dependencies recorded in every store, and the panel's graph view.

Flows are real (``cluster="sync"``) and record into the store under test
(memory, SQLite, PostgreSQL when ``DASKFLOW_TEST_POSTGRES_URL`` is set); the
big run's 100,000 task runs are written as events, as the engine writes
them. The view is checked on its Bokeh sources after ``update()``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dask
import sqlalchemy as sa
from bokeh.document import Document

from daskflow import flow, task
from daskflow.engine.edges import RUN_EDGES_KEPT
from daskflow.observers.events import (
    Event,
    FlowRunCreated,
    Observer,
    StateChanged,
    TaskEdgesAdded,
    TaskRunCreated,
    bus,
)
from daskflow.panel import PanelModel
from daskflow.panel.rungraph import layered_layout
from daskflow.panel.views import GraphView
from daskflow.panel.views.common import COLORS
from daskflow.states import State, StateType
from daskflow.store import RunStore, SQLStore
from daskflow.store.journal import decode, encode
from tests.test_store import store_fixture  # noqa: F401  (the `store` fixture, every kind)

S = StateType


@task
def make(n: int) -> list[int]:
    return list(range(n))


@task
def square(x: int) -> int:
    if x == 7:
        raise ValueError("seven")
    return x * x


@task
def total(values: list[int]) -> int:
    return sum(values)


@flow(name="fan", cluster="sync")
def fan(n: int) -> int:
    """Fan-out (make) -> map (square) -> fan-in (total)."""
    values = make.submit(n)
    return total(square.map(values))


class Into(Observer):
    """Writes every batch to one store (the fixture's own object, memory store included)."""

    def __init__(self, store: RunStore) -> None:
        self.store = store

    def on_events(self, events: Sequence[Event], **kwargs: Any) -> None:
        self.store.write(events)


def run_in(store: RunStore, n: int) -> str:
    """Run ``fan(n)`` recorded in ``store``; its flow run id."""
    observer = bus.register(Into(store))
    try:
        with dask.config.set({"daskflow.store": "none"}):
            fan(n, return_state=True)
    finally:
        bus.unregister(observer)  # delivers what is queued first
    return store.list_flow_runs(limit=1)[0].id


def graph_view(store: RunStore, flow_run_id: str) -> GraphView:
    model = PanelModel(store)
    model.select(flow_run_id)
    model.refresh()
    view = GraphView(model)
    Document().add_root(view.root)
    view.update()
    return view


# -- recorded edges --------------------------------------------------------------------
def test_edges_are_recorded_once_per_task_name_pair_in_every_store(store: RunStore) -> None:
    flow_run_id = run_in(store, 60)
    assert store.list_task_edges(flow_run_id) == [("make", "square"), ("square", "total")]
    rows = {r.id: r for r in store.list_task_runs(flow_run_id)}
    by_run = store.list_task_edges(flow_run_id, runs=True)
    # task runs' own pairs: only among the first RUN_EDGES_KEPT runs of the flow run
    assert 0 < len(by_run) <= 2 * RUN_EDGES_KEPT
    assert all(u in rows and d in rows for u, d in by_run)
    assert {(rows[u].task_name, rows[d].task_name) for u, d in by_run} <= {
        ("make", "square"),
        ("square", "total"),
    }


def test_a_pair_written_twice_is_read_once(store: RunStore) -> None:
    t, fid = time.time(), "e" * 32
    edges = TaskEdgesAdded(fid, (("a", "b"), ("b", "c")), (("1", "2"),))
    store.write([FlowRunCreated(fid, "f", "f-run", {}, None, t), edges])
    store.write([edges])  # a retried flow run reports its pairs again
    assert store.list_task_edges(fid) == [("a", "b"), ("b", "c")]
    assert store.list_task_edges(fid, runs=True) == [("1", "2")]
    assert store.list_task_edges("x" * 32) == []


def test_edges_survive_the_journal() -> None:
    event = TaskEdgesAdded("f" * 32, (("a", "b"),), (("1", "2"),))
    assert decode(json.loads(json.dumps(encode(event)))) == event


def test_a_version_5_store_is_upgraded_with_the_graph_tables(tmp_path: Path) -> None:
    path = str(tmp_path / "old.db")
    SQLStore(path).close()
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:  # back to schema version 5
        conn.execute(sa.text("DROP TABLE task_edges"))
        conn.execute(sa.text("DROP TABLE resource_samples"))
        conn.execute(sa.text("UPDATE meta SET value = '5' WHERE key = 'schema_version'"))
    engine.dispose()
    store = SQLStore(path)
    store.write([TaskEdgesAdded("f" * 32, (("a", "b"),))])
    assert store.list_task_edges("f" * 32) == [("a", "b")]
    store.close()


# -- the graph view -----------------------------------------------------------------------
def test_the_graph_of_a_fan_out_map_fan_in_run_has_a_node_per_task_name(tmp_path: Path) -> None:
    store = SQLStore(str(tmp_path / "runs.db"))
    view = graph_view(store, run_in(store, 60))  # 62 task runs: aggregated by task name
    nodes = dict(view.nodes.data)
    assert nodes["id"] == ["make", "square", "total"]
    at = {name: i for i, name in enumerate(nodes["id"])}
    assert [nodes["total"][at[n]] for n in ("make", "square", "total")] == [1, 60, 1]
    # one square failed (x == 7): the node is red and says so; total never ran
    square_ = at["square"]
    assert (nodes["completed"][square_], nodes["failed"][square_]) == (59, 1)
    assert nodes["color"][square_] == COLORS[S.FAILED]
    assert nodes["summary"][square_] == "59/60 done, 1 failed"
    assert nodes["color"][at["make"]] == COLORS[S.COMPLETED]
    assert nodes["summary"][at["make"]] == "1/1 done"
    assert nodes["state"][at["total"]] == "FAILED"  # UPSTREAM_FAILED counts as failed
    # layers top down: make, then square, then total; an arrow between each two
    assert nodes["y"][at["make"]] > nodes["y"][square_] > nodes["y"][at["total"]]
    edges = view.edges.data
    assert len(edges["x0"]) == 2
    assert sorted(zip(edges["y0"], edges["y1"], strict=True), reverse=True) == [
        (nodes["y"][at["make"]] - 0.25, nodes["y"][square_] + 0.25),
        (nodes["y"][square_] - 0.25, nodes["y"][at["total"]] + 0.25),
    ]
    assert "3 task names, 2 dependencies" in view.note.text
    store.close()


def test_a_small_run_has_a_node_per_task_run(tmp_path: Path) -> None:
    store = SQLStore(str(tmp_path / "runs.db"))
    view = graph_view(store, run_in(store, 3))  # make, 3 squares, total
    nodes = view.nodes.data
    assert sorted(nodes["label"]) == ["make", "square-0", "square-1", "square-2", "total"]
    assert len(view.edges.data["x0"]) == 6  # make -> each square -> total
    assert set(nodes["color"]) == {COLORS[S.COMPLETED]}
    assert "5 task runs, 6 dependencies" in view.note.text
    store.close()


def write_live_run(store: RunStore, fid: str, n: int) -> None:
    """A RUNNING run of ``n`` task runs (extract -> transform -> load, n // 3 each).

    Extract is done, transform half done and half running, load pending.
    """
    t = time.time() - 60
    names = ("extract", "transform", "load")
    events: list[Event] = [
        FlowRunCreated(fid, "live", "live-run", {}, None, t),
        StateChanged(fid, None, State(S.RUNNING, t), 1),
        TaskEdgesAdded(fid, (("extract", "transform"), ("transform", "load"))),
    ]
    for i in range(n):
        name, tid = names[i % 3], f"{fid[:16]}{i:016x}"
        events.append(TaskRunCreated(tid, fid, name, f"{name}-{i}", i, frozenset(), i, t))
        if name == "extract" or (name == "transform" and i % 2):
            events.append(StateChanged(fid, tid, State(S.COMPLETED, t + 1), 1, "w"))
        elif name == "transform":
            events.append(StateChanged(fid, tid, State(S.RUNNING, t + 1), 1, "w"))
        if len(events) > 30_000:
            store.write(events)
            events = []
    store.write(events)


def test_a_run_of_100_000_task_runs_is_three_live_nodes(tmp_path: Path) -> None:
    store = SQLStore(str(tmp_path / "big.db"))
    fid = "b" * 32
    write_live_run(store, fid, 99_999)
    view = graph_view(store, fid)
    nodes = view.nodes.data
    at = {name: i for i, name in enumerate(nodes["id"])}
    assert nodes["total"] == [33_333] * 3
    assert nodes["color"][at["extract"]] == COLORS[S.COMPLETED]
    assert nodes["color"][at["transform"]] == COLORS[S.RUNNING]
    assert nodes["summary"][at["transform"]] == "16,667/33,333 done, 16,666 running"
    assert nodes["color"][at["load"]] == COLORS[S.PENDING]
    assert len(view.edges.data["x0"]) == 2
    # live: the next refresh shows what changed since
    tid = f"{fid[:16]}{2:016x}"  # a load
    store.write([StateChanged(fid, tid, State(S.FAILED, time.time()), 1, "w")])
    view.model.refresh()
    view.update()
    assert view.nodes.data["color"][at["load"]] == COLORS[S.FAILED]
    store.close()


def test_layers_put_each_task_below_what_it_depends_on_and_cycles_in_one_layer() -> None:
    at = layered_layout(
        ["a", "b", "c", "d", "loop"], [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("d", "d")]
    )
    assert at["a"][1] == 0
    assert at["b"][1] == at["c"][1] == -1
    assert at["d"][1] == -2
    assert at["b"][0] != at["c"][0]
    assert at["loop"][1] == 0  # no dependencies: the first layer
    cyclic = layered_layout(["x", "y", "z"], [("x", "y"), ("y", "x"), ("y", "z")])
    assert cyclic["x"][1] == cyclic["y"][1] == 0
    assert cyclic["z"][1] == -1


def test_no_selected_run_draws_nothing() -> None:
    from daskflow.store import MemoryStore

    view = graph_view(MemoryStore(), "nope")
    assert view.nodes.data["id"] == []
    assert view.note.text == ""


def test_a_layer_too_wide_for_labels_shows_them_on_hover_only() -> None:
    from daskflow.store import MemoryStore

    store = MemoryStore()
    view = graph_view(store, run_in(store, 20))  # 22 task runs: 20 squares side by side
    nodes = view.nodes.data
    assert len(nodes["id"]) == 22
    squares = [i for i, label in enumerate(nodes["label"]) if label.startswith("square-")]
    assert [nodes["text"][i] for i in squares] == [""] * 20
    assert sorted(nodes["summary"][i] for i in squares) == ["completed"] * 19 + ["failed"]
    assert nodes["text"][nodes["label"].index("make")] == ""  # one rule for the whole graph

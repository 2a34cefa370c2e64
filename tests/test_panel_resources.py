"""Worker CPU and memory: sampled while a flow runs on a cluster, recorded, drawn from the store.

The cluster run is real (a 2-process ``LocalCluster``, about 2.5 s of busy
tasks) and records into SQLite through the configured store; the view is
then built from a store object alone, with no scheduler, as ``daskflow
dashboard`` builds it. Binning is checked on every kind of store.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import dask
import pytest
from bokeh.document import Document
from bokeh.models import Legend
from distributed import Client, LocalCluster

from daskflow import flow, task
from daskflow.observers.events import FlowRunCreated, ResourcesSampled, StateChanged
from daskflow.panel import PanelModel
from daskflow.panel.views import ResourcesView, TimelineView
from daskflow.panel.views.resources import MAX_LINES
from daskflow.states import State, StateType
from daskflow.store import RunStore, SQLStore
from daskflow.store.journal import decode, encode
from tests.test_store import store_fixture  # noqa: F401  (the `store` fixture, every kind)

S = StateType


@task
def busy(x: int) -> int:
    """About 0.6 s of CPU."""
    began = time.perf_counter()
    while time.perf_counter() - began < 0.6:
        x = (x * 31 + 7) % 1_000_003
    return x


@flow(name="busy")
def crunch(n: int) -> list[int]:
    return busy.map(range(n)).result()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """A SQLite store holding one ~2.5 s run on 2 worker processes, and one sync run."""
    path = str(tmp_path_factory.mktemp("resources") / "runs.db")
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
        dask.config.set({"daskflow.store": path}),
    ):
        workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
        crunch.with_options(cluster=client)(8)  # 8 x 0.6 s on 2 single-thread workers
        crunch.with_options(cluster="sync")(1)
    store = SQLStore(path)
    sync_run, cluster_run = store.list_flow_runs(limit=2)
    yield SimpleNamespace(store=store, run=cluster_run, sync=sync_run, workers=workers)
    store.close()


def view_of(store: RunStore, flow_run_id: str, scheduler: object = None) -> ResourcesView:
    """The resources view of one run, from the store alone, beside the timeline."""
    model = PanelModel(store, scheduler)
    model.select(flow_run_id)
    model.refresh()
    timeline = TimelineView(model)
    view = ResourcesView(model, x_range=timeline.figure.x_range)
    doc = Document()
    doc.add_root(timeline.root)
    doc.add_root(view.root)
    view.update()
    return view


def test_a_cluster_run_records_samples_of_both_workers_about_once_a_second(recorded):
    run = recorded.run
    span = run.end_time - run.start_time
    assert span > 2.0
    rows = recorded.store.bin_resources(run.id, start=run.start_time, width=span, bins=1)
    assert sorted(r.worker for r in rows) == recorded.workers
    for row in rows:
        assert span - 1 <= row.samples <= span + 2  # one a second, and one as it starts
        assert row.memory > 10e6  # a worker process holds more than 10 MB
        assert row.cpu >= 0


def test_the_view_draws_recorded_samples_from_the_store_alone(recorded):
    view = view_of(recorded.store, recorded.run.id)  # no scheduler attached
    data = view.source.data
    assert data["worker"] == recorded.workers  # one line each
    for xs, cpu, memory in zip(data["xs"], data["cpu"], data["memory"], strict=True):
        assert len(xs) >= 2
        assert len(xs) == len(cpu) == len(memory)
        start, end = recorded.run.start_time * 1000, recorded.run.end_time * 1000
        assert start <= xs[0]
        assert xs[-1] <= end + 1000
        assert all(m > 0.01 for m in memory)  # GB
    assert view.plots.visible
    assert "2 worker(s)" in view.note.text
    assert view.cpu.x_range is view.memory.x_range  # and the timeline's
    for plot in (view.cpu, view.memory):
        [legend] = [m for m in plot.right if isinstance(m, Legend)]  # beside the plot, outside
        assert [item.label.field for item in legend.items] == ["worker"]  # an entry per worker


def test_a_run_without_a_cluster_says_so_instead_of_empty_plots(recorded):
    view = view_of(recorded.store, recorded.sync.id)
    assert view.source.data["worker"] == []
    assert not view.plots.visible
    assert view.note.text.startswith("No worker resources were recorded for this run")
    assert "cluster=&quot;sync&quot;" in view.note.text or 'cluster="sync"' in view.note.text


def test_samples_are_binned_per_worker_alike_in_every_store(store: RunStore) -> None:
    fid, t = "r" * 32, 1_000_000.0

    def sample(at: float, a: float, b: float) -> ResourcesSampled:
        return ResourcesSampled(fid, at, (("tcp://a", a, 1e9), ("tcp://b", b, 2e9)))

    store.write(
        [
            FlowRunCreated(fid, "f", "f-run", {}, None, t),
            StateChanged(fid, None, State(S.RUNNING, t), 1),
            sample(t - 0.5, 10, 20),  # before the first bin: counted in it
            sample(t + 0.5, 30, 40),
            sample(t + 1.5, 50, 60),
            sample(t + 9.0, 70, 80),  # after the last bin: counted in it
        ]
    )
    rows = store.bin_resources(fid, start=t, width=1.0, bins=3)
    got = [(r.worker, r.bin, r.cpu, r.memory, r.samples) for r in rows]
    assert got == [
        ("tcp://a", 0, 20.0, 1e9, 2),
        ("tcp://a", 1, 50.0, 1e9, 1),
        ("tcp://a", 2, 70.0, 1e9, 1),
        ("tcp://b", 0, 30.0, 2e9, 2),
        ("tcp://b", 1, 60.0, 2e9, 1),
        ("tcp://b", 2, 80.0, 2e9, 1),
    ]
    assert store.bin_resources("x" * 32, start=t, width=1.0, bins=3) == []


def test_past_many_workers_one_line_shows_them_all(tmp_path: Path) -> None:
    store = SQLStore(str(tmp_path / "runs.db"))
    fid, t, n = "m" * 32, time.time() - 100, MAX_LINES + 4
    workers = tuple((f"tcp://w{i:02d}", float(i), 1e9) for i in range(n))
    store.write(
        [
            FlowRunCreated(fid, "f", "f-run", {}, None, t),
            StateChanged(fid, None, State(S.RUNNING, t), 1),
            *(ResourcesSampled(fid, t + s, workers) for s in range(5)),
            StateChanged(fid, None, State(S.COMPLETED, t + 5), 1),
        ]
    )
    data = view_of(store, fid).source.data
    assert data["worker"] == [f"all {n} workers (mean CPU, total memory)"]
    assert set(data["cpu"][0]) == {sum(range(n)) / n}
    assert set(data["memory"][0]) == {n * 1.0}  # GB
    store.close()


def test_an_attached_scheduler_adds_what_its_workers_do_now(recorded):
    workers = {"tcp://a": SimpleNamespace(metrics={"cpu": 50.0, "memory": 2e9})}
    view = view_of(recorded.store, recorded.run.id, SimpleNamespace(workers=workers))
    assert "Now: 1 worker(s), CPU 50% (mean), memory 2.00 GB (total)." in view.note.text


def test_samples_survive_the_journal() -> None:
    import json

    event = ResourcesSampled("f" * 32, 12.5, (("tcp://a:1", 3.5, 1e9),))
    assert decode(json.loads(json.dumps(encode(event)))) == event

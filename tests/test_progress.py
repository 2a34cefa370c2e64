"""Progress: the tracker fed by real runs' events, the terminal and notebook views.

The tracker is checked against the events of real flow runs (``sync`` and a
threads ``LocalCluster``): a recording observer keeps every batch the bus
delivers, and the batches are then fed, in order, to a tracker of the
top-level run — the same calls the bus makes when the tracker is registered.
Views are pure renderers of snapshots, rendered into a ``StringIO`` console
or to an HTML string; :func:`display_for` is driven with events published on
the real bus, and through the engine, which wraps every top-level flow run in it.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import dask
import pytest
from rich.console import Console

from daskflow import flow
from daskflow.observers.events import (
    Event,
    FlowRunCreated,
    Observer,
    StateChanged,
    TaskRunCreated,
    bus,
)
from daskflow.progress import RunTracker, choose_view, display, display_for, notebook, terminal
from daskflow.states import State, StateType
from tests.resources.tasks import add, boom, fails_twice, inc, numbers, total

# -- recording real runs -------------------------------------------------------------


class Recorder(Observer):
    """Keeps every batch the bus delivers."""

    def __init__(self) -> None:
        self.batches: list[list[Event]] = []

    def on_events(self, events: Sequence[Event], **kwargs: Any) -> None:
        self.batches.append(list(events))

    def top_level_run(self) -> FlowRunCreated:
        (created,) = [
            e
            for batch in self.batches
            for e in batch
            if isinstance(e, FlowRunCreated) and e.parent_flow_run_id is None
        ]
        return created

    def replay(self) -> RunTracker:
        created = self.top_level_run()
        tracker = RunTracker(created.flow_run_id, created.flow_name)
        for batch in self.batches:
            tracker.on_events(batch)
        return tracker


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    recording = Recorder()
    bus.register(recording)
    yield recording
    bus.unregister(recording)  # flushes: every batch is in


@pytest.fixture(params=["sync", "threads"])
def where(request: pytest.FixtureRequest) -> object:
    """``cluster="sync"`` or the session's threads ``LocalCluster``."""
    if request.param == "sync":
        return "sync"
    return request.getfixturevalue("threads_client")


@flow(name="child")
def child(x: int) -> int:
    return inc(x)


@flow(name="pipeline")
def pipeline(n: int, folder: str) -> int:
    doubled = add.map(range(n), range(n))
    broken = boom.submit(1)
    inc.submit(broken)  # UPSTREAM_FAILED
    fails_twice(folder)  # RETRYING twice, then COMPLETED
    return total(doubled) + child(1)


def test_tracker_counts_a_real_run(where, recorder, tmp_path):
    state = pipeline.with_options(cluster=where)(5, str(tmp_path), return_state=True)
    assert state.type is StateType.FAILED  # boom was never handled
    bus.flush()
    snapshot = recorder.replay().snapshot()

    assert snapshot.flow_name == "pipeline"
    assert snapshot.state is StateType.FAILED
    assert snapshot.finished
    assert snapshot.ended is not None
    assert snapshot.subflows == 1
    by_name = {t.name: t for t in snapshot.tasks}
    assert list(by_name) == ["add", "boom", "inc", "fails_twice", "total"]  # first seen
    assert (by_name["add"].completed, by_name["add"].total) == (5, 5)
    assert (by_name["boom"].failed, by_name["boom"].total) == (1, 1)
    assert "boom 1" in (by_name["boom"].first_error or "")
    # inc: one UPSTREAM_FAILED in the parent, one COMPLETED in the subflow
    assert (by_name["inc"].completed, by_name["inc"].failed, by_name["inc"].total) == (1, 1, 2)
    assert by_name["inc"].first_error is None  # upstream failures are not the cause
    assert (by_name["fails_twice"].completed, by_name["fails_twice"].total) == (1, 1)
    assert (by_name["total"].completed, by_name["total"].total) == (1, 1)
    totals = snapshot.totals
    assert (totals.pending, totals.running, totals.cancelled) == (0, 0, 0)
    assert (totals.completed, totals.failed, totals.total) == (8, 2, 10)


def test_tracker_follows_a_dynamic_map_and_ignores_other_runs(where, recorder):
    @flow(name="dynamic")
    def dynamic(n: int) -> int:
        return total(inc.map(numbers(n)))

    @flow(name="other")
    def other() -> int:
        return inc(0)

    assert other.with_options(cluster=where)() == 1
    assert dynamic.with_options(cluster=where)(7) == sum(range(1, 8))
    assert other.with_options(cluster=where)() == 1
    bus.flush()
    (created,) = [
        e
        for batch in recorder.batches
        for e in batch
        if isinstance(e, FlowRunCreated) and e.flow_name == "dynamic"
    ]
    tracker = RunTracker(created.flow_run_id, created.flow_name)
    for batch in recorder.batches:
        tracker.on_events(batch)
    snapshot = tracker.snapshot()
    assert snapshot.state is StateType.COMPLETED
    assert {t.name: (t.completed, t.total) for t in snapshot.tasks} == {
        "numbers": (1, 1),
        "inc": (7, 7),  # the other flow's inc runs are not counted
        "total": (1, 1),
    }


# -- the tracker on its own ----------------------------------------------------------


def _created(flow_run_id: str, task_run_id: str, name: str) -> TaskRunCreated:
    return TaskRunCreated(task_run_id, flow_run_id, name, name, None, frozenset(), None, 0.0)


def _moved(flow_run_id: str, task_run_id: str | None, type: StateType) -> StateChanged:
    return StateChanged(flow_run_id, task_run_id, State(type, message=f"{type.value} here"))


def test_tracker_at_100_000_task_runs_keeps_one_entry_per_run():
    tracker = RunTracker("f", "big")
    ids = [f"t{i}" for i in range(100_000)]
    tracker.on_events([_created("f", i, f"task{int(i[1:]) % 3}") for i in ids])
    tracker.on_events([_moved("f", i, StateType.RUNNING) for i in ids])
    running = tracker.snapshot().totals
    assert (running.running, running.total) == (100_000, 100_000)
    tracker.on_events([_moved("f", i, StateType.COMPLETED) for i in ids[:-10]])
    tracker.on_events([_moved("f", i, StateType.CRASHED) for i in ids[-10:]])
    tracker.on_events([_moved("f", None, StateType.FAILED)])
    snapshot = tracker.snapshot()
    assert (snapshot.totals.completed, snapshot.totals.failed) == (99_990, 10)
    assert sum(t.total for t in snapshot.tasks) == 100_000
    assert len(tracker._runs) == 100_000  # the only per-run memory


def test_a_final_state_is_never_left():
    tracker = RunTracker("f", "flow")
    tracker.on_events(
        [
            _created("f", "a", "t"),
            _moved("f", "a", StateType.RUNNING),
            _moved("f", "a", StateType.COMPLETED),
            _moved("f", "a", StateType.RETRYING),  # a late report of a lost attempt
            _moved("f", "unknown", StateType.RUNNING),  # created before the tracker listened
            _moved("f", None, StateType.COMPLETED),
            _moved("f", None, StateType.RUNNING),
        ]
    )
    snapshot = tracker.snapshot()
    assert snapshot.tasks[0].completed == snapshot.tasks[0].total == 1
    assert snapshot.state is StateType.COMPLETED


def test_snapshots_while_events_arrive_are_consistent():
    tracker = RunTracker("f", "flow")
    done = threading.Event()
    seen: list[tuple[int, int, int]] = []

    def read() -> None:
        while not done.is_set():
            t = tracker.snapshot().totals
            seen.append((t.total, t.pending + t.running + t.completed, t.completed))

    reader = threading.Thread(target=read)
    reader.start()
    for i in range(2_000):
        tracker.on_events(
            [
                _created("f", str(i), "t"),
                _moved("f", str(i), StateType.RUNNING),
                _moved("f", str(i), StateType.COMPLETED),
            ]
        )
    done.set()
    reader.join()
    assert all(total == parts for total, parts, _ in seen)  # never a half-applied batch
    assert all(total == completed for total, _, completed in seen)  # batches are atomic
    assert tracker.snapshot().totals.completed == 2_000


# -- choosing a view -----------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_choose_view(monkeypatch):
    assert choose_view(False) is None
    assert choose_view("off") is None
    assert choose_view(True) == "terminal"
    assert choose_view("auto") is None  # pytest captures stdout: no terminal
    assert choose_view() is None  # the tests' config says False
    monkeypatch.setattr(sys, "stdout", _Terminal())
    assert choose_view("auto") == "terminal"
    assert choose_view("False") is None


def test_nothing_shown_costs_nothing():
    with dask.config.set({"daskflow.progress": "auto"}):
        shown = display_for("f", "flow")
    assert isinstance(shown, contextlib.nullcontext)


# -- the terminal view ---------------------------------------------------------------


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=120, color_system=None), out


def _table_rows(text: str) -> dict[str, dict[str, str]]:
    """The rows of a printed ``rich`` table: task name → column → cell text."""
    lines = text.splitlines()
    header = next(line for line in lines if "┃" in line and "task" in line)
    columns = [cell.strip() for cell in header.split("┃")[1:-1]]
    rows = {}
    for line in lines:
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if len(cells) == len(columns):
            rows[cells[0]] = dict(zip(columns, cells, strict=True))
    return rows


def _publish_a_run(flow_run_id: str) -> None:
    """What the engine publishes for a small run: 3 ``load`` runs, one of them failing."""
    bus.publish(
        [
            *(_created(flow_run_id, f"{flow_run_id}-{i}", "load") for i in range(3)),
            *(_moved(flow_run_id, f"{flow_run_id}-{i}", StateType.RUNNING) for i in range(3)),
        ]
    )
    bus.publish(
        [
            _moved(flow_run_id, f"{flow_run_id}-0", StateType.COMPLETED),
            _moved(flow_run_id, f"{flow_run_id}-1", StateType.COMPLETED),
            _moved(flow_run_id, f"{flow_run_id}-2", StateType.TIMED_OUT),
            _moved(flow_run_id, None, StateType.FAILED),
        ]
    )


def test_terminal_live_frame_and_summary():
    tracker = RunTracker("f", "etl")
    tracker.on_events(
        [
            *(_created("f", str(i), "extract") for i in range(4)),
            _moved("f", "0", StateType.COMPLETED),
            _moved("f", "1", StateType.FAILED),
            _moved("f", "2", StateType.RUNNING),
        ]
    )
    console, out = _console()
    console.print(terminal.render_live(tracker.snapshot()))
    assert "etl: PENDING" in out.getvalue()
    assert "extract" in out.getvalue()
    assert "1 done / 1 failed / 1 running of 4" in out.getvalue()

    console, out = _console()
    console.print(terminal.render_summary(tracker.snapshot()))
    assert _table_rows(out.getvalue())["extract"] == {
        "task": "extract",
        "completed": "1",
        "failed": "1",
        "unfinished": "2",  # shown only when the flow ended with runs unfinished
        "total": "4",
        "first error": "FAILED here",
    }


def test_display_for_shows_the_terminal_summary():
    console, out = _console()
    with dask.config.set({"daskflow.progress": True}):
        shown = display_for("run-1", "etl", console=console)
    with shown:
        _publish_a_run("run-1")
    text = out.getvalue()
    assert "etl FAILED" in text
    assert _table_rows(text)["load"] == {
        "task": "load",
        "completed": "2",
        "failed": "1",
        "total": "3",
        "first error": "TIMED_OUT here",
    }
    assert not bus.active or all(not isinstance(o, RunTracker) for o in bus._observers)


def test_a_broken_view_never_breaks_the_run(monkeypatch, caplog):
    def broken(snapshot: object) -> str:
        raise RuntimeError("cannot draw")

    monkeypatch.setattr(terminal, "render_summary", broken)
    console, _ = _console()
    with dask.config.set({"daskflow.progress": True}):
        with display_for("run-2", "etl", console=console):
            _publish_a_run("run-2")
        assert "cannot show the progress summary" in caplog.text
        assert not _trackers_on_the_bus()

        # the flow's own exception passes through untouched
        with (
            pytest.raises(KeyError, match="the flow's own"),
            display_for("run-3", "etl", console=console),
        ):
            raise KeyError("the flow's own")
        assert not _trackers_on_the_bus()


def test_a_view_that_cannot_start_registers_nothing(monkeypatch, caplog):
    def refuse(self: object) -> None:
        raise RuntimeError("no terminal today")

    monkeypatch.setattr(terminal.TerminalView, "start", refuse)
    with (
        dask.config.set({"daskflow.progress": True}),
        display_for("run-4", "etl", console=_console()[0]),
    ):
        assert not _trackers_on_the_bus()
    assert "no terminal today" in caplog.text


def _trackers_on_the_bus() -> list[Observer]:
    return [o for o in bus._observers if isinstance(o, RunTracker)]


# -- the notebook view ---------------------------------------------------------------


class FakeHandle:
    """Stands in for IPython's ``DisplayHandle``: keeps what was shown."""

    def __init__(self) -> None:
        self.shown: list[str] = []
        self.display_ids: list[object] = []

    def display(self, obj: Any, display_id: object = None) -> FakeHandle:
        self.display_ids.append(display_id)
        self.shown.append(obj._repr_html_())
        return self

    def update(self, obj: Any) -> None:
        self.shown.append(obj._repr_html_())


def test_notebook_html_holds_the_counts():
    tracker = RunTracker("f", "<etl>")
    tracker.on_events(
        [
            *(_created("f", str(i), "a<b") for i in range(3)),
            _moved("f", "0", StateType.COMPLETED),
            _moved("f", "1", StateType.UPSTREAM_FAILED),
        ]
    )
    live = notebook.render_live(tracker.snapshot())
    assert "1 done / 1 failed / 0 running of 3" in live
    assert '<progress value="2" max="3"' in live
    assert "a&lt;b" in live  # names are escaped
    assert "&lt;etl&gt;" in live
    summary = notebook.render_summary(tracker.snapshot())
    cells = [c.split(">")[1] for c in summary.split("<td")[1:]]
    assert cells[:4] == ["a&lt;b</td", "1</td", "1</td", "3</td"]


def test_notebook_view_updates_one_display_and_ends_with_the_summary():
    tracker = RunTracker("f", "etl")
    handle = FakeHandle()
    view = notebook.NotebookView(tracker, display=handle.display, interval=0.01)
    view.start()
    tracker.on_events([_created("f", "0", "load"), _moved("f", "0", StateType.COMPLETED)])
    tracker.on_events([_moved("f", None, StateType.COMPLETED)])
    view.stop()
    assert handle.display_ids == [True]
    assert "no task runs yet" in handle.shown[0]
    assert "daskflow-summary" in handle.shown[-1]
    assert "COMPLETED" in handle.shown[-1]
    assert ">load</td>" in handle.shown[-1]
    assert all("daskflow-summary" not in html for html in handle.shown[:-1])


def test_display_for_in_a_kernel_uses_the_notebook_view(monkeypatch):
    handle = FakeHandle()
    monkeypatch.setattr(display, "in_kernel", lambda: True)
    monkeypatch.setattr(notebook, "_ipython_display", lambda: handle.display)
    assert choose_view("auto") == "notebook"
    with dask.config.set({"daskflow.progress": "auto"}), display_for("run-5", "etl"):
        _publish_a_run("run-5")
    assert handle.display_ids == [True]
    rows = re.findall(r"<tr>(.*?)</tr>", handle.shown[-1])
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in rows]
    assert ["load", "2", "1", "3", "TIMED_OUT here"] in cells
    assert not _trackers_on_the_bus()


# -- through the engine --------------------------------------------------------------


def test_a_flow_shows_its_summary(where, capsys):
    @flow(name="shown")
    def shown(n: int) -> int:
        return total(inc.map(range(n)))

    with dask.config.set({"daskflow.progress": True}):
        assert shown.with_options(cluster=where)(4) == 10
    rows = _table_rows(capsys.readouterr().out)
    assert rows["inc"] == {"task": "inc", "completed": "4", "failed": "0", "total": "4"}
    assert rows["total"]["completed"] == "1"
    assert rows["all tasks"]["total"] == "5"  # the footer

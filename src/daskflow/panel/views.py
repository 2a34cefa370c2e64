"""The panel's views: each a ``source``, a ``root`` and an ``update()``.

The shape of distributed's dashboard components: ``root`` is the Bokeh model
placed in the page, ``update()`` reads the :class:`~.model.PanelModel` and
sets ``source.data`` (only when it changed, so an idle page sends nothing
to the browser). Nothing here scales with the number of task runs: progress
is one bar per task name, the timeline switches to one bar per task name
past :data:`~.model.TIMELINE_LIMIT` runs.
"""

from __future__ import annotations

import datetime
from typing import Any

from bokeh.layouts import column, row
from bokeh.models import ColumnDataSource, FactorRange, HoverTool
from bokeh.models.widgets import DataTable, DateFormatter, Div, Select, TableColumn
from bokeh.plotting import figure

from daskflow.panel.model import PanelModel
from daskflow.states import StateType

__all__ = [
    "VIEWS",
    "AlertsView",
    "FailuresView",
    "ProgressView",
    "ResourcesView",
    "RunsView",
    "TimelineView",
]

COLORS = {
    StateType.COMPLETED: "#2ca02c",
    StateType.CACHED: "#98df8a",
    StateType.FAILED: "#d62728",
    StateType.TIMED_OUT: "#ff7f0e",
    StateType.CRASHED: "#8c564b",
    StateType.UPSTREAM_FAILED: "#f7b6d2",
    StateType.CANCELLED: "#7f7f7f",
    StateType.RUNNING: "#1f77b4",
    StateType.RETRYING: "#9467bd",
    StateType.PENDING: "#c7c7c7",
    StateType.SCHEDULED: "#dbdb8d",
}
PROGRESS = ("completed", "cached", "failed", "running", "pending")
PROGRESS_COLORS = ("#2ca02c", "#98df8a", "#d62728", "#1f77b4", "#c7c7c7")
_BUCKET = {
    StateType.COMPLETED: "completed",
    StateType.CACHED: "cached",
    StateType.RUNNING: "running",
    StateType.RETRYING: "running",
}


_NO_CLUSTER = (
    "No cluster attached here: worker CPU and memory show on the panel of the Dask "
    "dashboard (/daskflow)."
)


def _set(source: ColumnDataSource, data: dict[str, list[Any]]) -> None:
    if dict(source.data) != data:
        source.data = data


def _when(seconds: float | None) -> datetime.datetime | None:
    return None if seconds is None else datetime.datetime.fromtimestamp(seconds, datetime.UTC)


def _duration(start: float | None, end: float | None) -> str:
    return "" if start is None or end is None else f"{end - start:.2f} s"


class RunsView:
    """Recent flow runs (state, start, duration, task counts); filters; selection."""

    def __init__(self, model: PanelModel) -> None:
        self.model = model
        self.source = ColumnDataSource(self._data())
        columns = [
            TableColumn(field="name", title="run"),
            TableColumn(field="flow", title="flow"),
            TableColumn(field="state", title="state"),
            TableColumn(
                field="start", title="start (UTC)", formatter=DateFormatter(format="%F %T")
            ),
            TableColumn(field="duration", title="duration"),
            TableColumn(field="tasks", title="task runs (done / failed / total)"),
        ]
        self.table = DataTable(
            source=self.source, columns=columns, height=260, sizing_mode="stretch_width"
        )
        flows: list[str | None] = ["all"]
        self.flow_select = Select(title="flow", value="all", options=flows, width=180)
        states: list[str | None] = ["all", *(t.value for t in StateType)]
        self.state_select = Select(title="state", value="all", options=states, width=180)
        self.flow_select.on_change("value", self._on_filter)
        self.state_select.on_change("value", self._on_filter)
        self.source.selected.on_change("indices", self._on_select)
        self.root = column(
            Div(text="<h3>Flow runs</h3>"),
            row(self.flow_select, self.state_select),
            self.table,
            sizing_mode="stretch_width",
        )

    def _data(self) -> dict[str, list[Any]]:
        data: dict[str, list[Any]] = {
            k: [] for k in ("id", "name", "flow", "state", "start", "duration", "tasks")
        }
        for run in self.model.flow_runs:
            counts = self.model.run_counts.get(run.id, {})
            total = sum(sum(c.values()) for c in counts.values())
            done = sum(c.get(s, 0) for c in counts.values() for s in _DONE)
            failed = sum(c.get(s, 0) for c in counts.values() for s in _FAILED)
            data["id"].append(run.id)
            data["name"].append(run.name)
            data["flow"].append(run.flow_name)
            data["state"].append(run.state.value)
            data["start"].append(_when(run.start_time or run.created))
            data["duration"].append(_duration(run.start_time, run.end_time))
            data["tasks"].append(f"{done:,} / {failed:,} / {total:,}")
        return data

    def _on_filter(self, attr: str, old: Any, new: Any) -> None:
        flow, state = self.flow_select.value, self.state_select.value
        self.model.flow_filter = None if flow == "all" else flow
        self.model.state_filter = None if state == "all" else StateType(state)

    def _on_select(self, attr: str, old: Any, new: list[int]) -> None:
        ids = self.source.data["id"]
        if new and new[0] < len(ids):
            self.model.select(ids[new[0]])

    def update(self) -> None:
        flows: list[str | None] = ["all", *self.model.flow_names]
        if self.flow_select.options != flows:
            self.flow_select.options = flows
        _set(self.source, self._data())


_DONE = (StateType.COMPLETED, StateType.CACHED)
_FAILED = (StateType.FAILED, StateType.TIMED_OUT, StateType.CRASHED, StateType.UPSTREAM_FAILED)


class ProgressView:
    """Per task name: completed / cached / failed / running / pending of total."""

    def __init__(self, model: PanelModel) -> None:
        self.model = model
        self.source = ColumnDataSource({"task": [], "label": [], **{k: [] for k in PROGRESS}})
        self.lanes = FactorRange()
        self.figure = figure(
            y_range=self.lanes,
            height=240,
            title="Progress per task",
            toolbar_location=None,
            sizing_mode="stretch_width",
        )
        self.figure.hbar_stack(
            list(PROGRESS), y="task", height=0.7, color=list(PROGRESS_COLORS),
            source=self.source, legend_label=list(PROGRESS),
        )  # fmt: skip
        self.figure.legend.orientation = "horizontal"
        self.figure.legend.location = "top_right"
        self.figure.add_tools(HoverTool(tooltips=[("task", "@task"), ("", "@label")]))
        self.summary = Div(text="")
        self.root = column(self.summary, self.figure, sizing_mode="stretch_width")

    def update(self) -> None:
        data: dict[str, list[Any]] = {"task": [], "label": [], **{k: [] for k in PROGRESS}}
        for task, by_state in sorted(self.model.counts.items()):
            buckets = dict.fromkeys(PROGRESS, 0)
            for state, n in by_state.items():
                if state in _FAILED:
                    buckets["failed"] += n
                else:
                    buckets[_BUCKET.get(state, "pending")] += n
            data["task"].append(task)
            data["label"].append(", ".join(f"{k} {v:,}" for k, v in buckets.items()))
            for key in PROGRESS:
                data[key].append(buckets[key])
        if list(self.lanes.factors) != data["task"]:
            self.lanes.factors = data["task"]
        _set(self.source, data)
        run = self.model.selected_run
        text = (
            f"<b>{run.name}</b> ({run.flow_name}): {run.state.value}, "
            f"{self.model.total:,} task runs — "
            + "; ".join(
                f"{t}: {label}" for t, label in zip(data["task"], data["label"], strict=True)
            )
            if run is not None
            else "no flow run recorded yet"
        )
        if self.summary.text != text:
            self.summary.text = text


class TimelineView:
    """Task runs over time, a lane per task name, coloured by state."""

    def __init__(self, model: PanelModel) -> None:
        self.model = model
        self.source = ColumnDataSource(
            {"lane": [], "start": [], "end": [], "color": [], "name": [], "state": []}
        )
        self.lanes = FactorRange()
        self.figure = figure(
            y_range=self.lanes,
            x_axis_type="datetime",
            height=260,
            title="Timeline",
            toolbar_location="above",
            sizing_mode="stretch_width",
        )
        self.figure.hbar(
            y="lane", left="start", right="end", height=0.8, color="color", source=self.source
        )
        self.figure.add_tools(HoverTool(tooltips=[("run", "@name"), ("state", "@state")]))
        self.root = self.figure

    def update(self) -> None:
        data: dict[str, list[Any]] = {k: [] for k in self.source.data}
        now = self.model.clock()
        if self.model.spans:  # a big run: one bar per task name
            for task, (count, start, end) in sorted(self.model.spans.items()):
                if start is None:
                    continue
                by_state = self.model.counts.get(task, {})
                state = max(by_state, key=by_state.__getitem__) if by_state else StateType.PENDING
                self._bar(data, task, start, end or now, f"{task} ({count:,} runs)", state)
        else:
            for run in self.model.task_runs:
                history = self.model.attempts.get(run.id)
                if history:  # one bar per attempt, ended by the state it led to
                    for i, began in enumerate(history):
                        if began.state is not StateType.RUNNING:
                            continue
                        ended = history[i + 1] if i + 1 < len(history) else None
                        end = now if ended is None else ended.timestamp
                        state = began.state if ended is None else ended.state
                        label = f"{run.name} (attempt {began.attempt})"
                        self._bar(data, run.task_name, began.timestamp, end, label, state)
                elif run.start_time is not None:
                    end = run.end_time or now
                    self._bar(data, run.task_name, run.start_time, end, run.name, run.state)
        lanes = sorted(set(data["lane"]))
        if list(self.lanes.factors) != lanes:
            self.lanes.factors = lanes
        _set(self.source, data)

    @staticmethod
    def _bar(
        data: dict[str, list[Any]], lane: str, start: float, end: float, name: str, state: StateType
    ) -> None:
        data["lane"].append(lane)
        data["start"].append(start * 1000.0)  # Bokeh's datetime axis: milliseconds
        data["end"].append(end * 1000.0)
        data["color"].append(COLORS.get(state, "#c7c7c7"))
        data["name"].append(name)
        data["state"].append(state.value)


class FailuresView:
    """Failed task runs (type, message, traceback) and the selected run's logs."""

    def __init__(self, model: PanelModel) -> None:
        self.model = model
        self.source = ColumnDataSource(
            {"name": [], "state": [], "error_type": [], "error_message": [], "traceback": []}
        )
        self.logs_source = ColumnDataSource({"time": [], "level": [], "task": [], "message": []})
        failures = DataTable(
            source=self.source,
            columns=[
                TableColumn(field="name", title="task run"),
                TableColumn(field="state", title="state"),
                TableColumn(field="error_type", title="error"),
                TableColumn(field="error_message", title="message"),
            ],
            height=180,
            sizing_mode="stretch_width",
        )
        logs = DataTable(
            source=self.logs_source,
            columns=[
                TableColumn(field="time", title="time (UTC)", formatter=DateFormatter(format="%T")),
                TableColumn(field="level", title="level"),
                TableColumn(field="task", title="task"),
                TableColumn(field="message", title="message"),
            ],
            height=200,
            sizing_mode="stretch_width",
        )
        self.traceback = Div(text="", sizing_mode="stretch_width")
        self.source.selected.on_change("indices", lambda attr, old, new: self._show(new))
        self.root = column(
            Div(text="<h3>Failures</h3>"),
            failures,
            self.traceback,
            Div(text="<h3>Logs</h3>"),
            logs,
            sizing_mode="stretch_width",
        )

    def _show(self, indices: list[int]) -> None:
        tracebacks = self.source.data["traceback"]
        index = indices[0] if indices else 0
        text = tracebacks[index] if index < len(tracebacks) else ""
        self.traceback.text = f"<pre style='font-size: 11px'>{_escape(text)}</pre>" if text else ""

    def update(self) -> None:
        rows = self.model.failures
        _set(
            self.source,
            {
                "name": [r.name for r in rows],
                "state": [r.state.value for r in rows],
                "error_type": [r.error_type or "" for r in rows],
                "error_message": [r.error_message or "" for r in rows],
                "traceback": [r.traceback or "" for r in rows],
            },
        )
        self._show(list(self.source.selected.indices))
        logs = self.model.logs
        _set(
            self.logs_source,
            {
                "time": [_when(r.timestamp) for r in logs],
                "level": [_LEVELS.get(r.level, str(r.level)) for r in logs],
                "task": [r.task_name or "(flow)" for r in logs],
                "message": [r.message for r in logs],
            },
        )


_LEVELS = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class ResourcesView:
    """Worker CPU and memory over time, from the scheduler while a cluster is attached."""

    def __init__(self, model: PanelModel, keep: int = 1_200, x_range: Any = None) -> None:
        self.model = model
        self.keep = keep
        self.source = ColumnDataSource({"time": [], "cpu": [], "memory": []})
        shared = {} if x_range is None else {"x_range": x_range}  # the timeline's time axis
        self.cpu = figure(
            x_axis_type="datetime", height=160, title="Worker CPU (%)", toolbar_location=None,
            sizing_mode="stretch_width", **shared,
        )  # fmt: skip
        self.cpu.line("time", "cpu", source=self.source, color="#1f77b4")
        self.memory = figure(
            x_axis_type="datetime", height=160, title="Worker memory (GB)", toolbar_location=None,
            x_range=self.cpu.x_range, sizing_mode="stretch_width",
        )  # fmt: skip
        self.memory.line("time", "memory", source=self.source, color="#ff7f0e")
        self.note = Div(text="")
        self.root = column(self.note, row(self.cpu, self.memory, sizing_mode="stretch_width"))

    def update(self) -> None:
        now = self.model.resources
        if now is None:
            self.note.text = _NO_CLUSTER
            return
        self.note.text = ""
        self.source.stream(
            {"time": [now["time"] * 1000.0], "cpu": [now["cpu"]], "memory": [now["memory"] / 1e9]},
            rollover=self.keep,
        )


class AlertsView:
    """A red banner naming the flow runs that failed or crashed since the page opened."""

    def __init__(self, model: PanelModel) -> None:
        self.model = model
        self.source = ColumnDataSource({"name": [], "state": [], "message": []})
        self.root = Div(text="", sizing_mode="stretch_width")

    def update(self) -> None:
        alerts = self.model.alerts
        _set(
            self.source,
            {
                "name": [r.name for r in alerts],
                "state": [r.state.value for r in alerts],
                "message": [r.state_message for r in alerts],
            },
        )
        if not alerts:
            text = ""
        else:
            items = "".join(
                f"<li><b>{_escape(r.name)}</b> {r.state.value}: {_escape(r.state_message)}</li>"
                for r in alerts[:10]
            )
            text = (
                "<div style='background:#d62728;color:white;padding:6px 12px;border-radius:4px'>"
                f"{len(alerts)} flow run(s) failed since this page opened<ul>{items}</ul></div>"
            )
        if self.root.text != text:
            self.root.text = text


#: Every view, in the order the page shows them.
VIEWS = (AlertsView, RunsView, ProgressView, TimelineView, FailuresView, ResourcesView)

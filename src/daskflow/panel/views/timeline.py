"""The timeline (Gantt) of the selected flow run: a lane per task name, coloured by state.

Up to :data:`~daskflow.panel.model.TIMELINE_LIMIT` task runs, each is a bar
(each attempt of a retried run its own bar, ended by the state it led to).
Past that, drawing a glyph per run would stall the browser, so the lane of
a task name shows a histogram instead: per time bin, a stack whose height is
the number of task runs that started in the bin (relative to the busiest
bin) and whose segments are their states, over a pale bar across the bins
where the task name's runs started. At most a few thousand glyphs, whatever
the size of the run. The states drawn are named in a legend to the right
of the plot, outside the bars.
"""

from __future__ import annotations

from typing import Any

from bokeh.core import properties
from bokeh.layouts import column
from bokeh.models import ColumnDataSource, FactorRange, HoverTool
from bokeh.models.annotations import Legend, LegendItem, Title
from bokeh.plotting import figure

from daskflow.panel.model import Histogram, PanelModel
from daskflow.states import StateType
from daskflow.store.base import TaskRunBin, TaskRunRow, TransitionRow

from .common import COLORS, empty_state, millis, sentence, set_data

__all__ = ["TimelineView"]

_BARS = ("lane", "start", "end", "color", "name", "state")
_CELLS = ("lane", "y", "height", "start", "end", "color", "state", "count", "label")
#: Stacking order of the states in a histogram cell, bottom up: failures on top.
_ORDER = {state: i for i, state in enumerate(COLORS)}
_ORDER.update({s: -1 for s in (StateType.COMPLETED, StateType.CACHED)})
#: Lane height used by a cell's stack, and the least height of a state in it.
_STACK, _LEAST = 0.8, 0.05
_SPAN_COLOR = "#eeeeee"


class TimelineView:
    """Task runs over time, a lane per task name, coloured by state.

    Attributes
    ----------
    source : ColumnDataSource
        Bars: a task run or attempt each (small runs), or one per task name
        spanning its runs (big runs).
    bins : ColumnDataSource
        Big runs only: one segment per task name, time bin and state.
    figure
        The plot (its ``x_range`` is shared with the resources view).
    """

    def __init__(self, model: PanelModel) -> None:
        self.model = model
        self.source = ColumnDataSource({k: [] for k in _BARS})
        self.bins = ColumnDataSource({k: [] for k in _CELLS})
        self.lanes = FactorRange()
        self.figure = figure(
            y_range=self.lanes,
            x_axis_type="datetime",
            height=260,
            title="Timeline",
            toolbar_location="above",
            sizing_mode="stretch_width",
        )
        title = self.figure.title
        assert isinstance(title, Title)
        self.title = title
        bars: Any = self.figure.hbar(
            y="lane", left="start", right="end", height=0.8, color="color", source=self.source
        )
        cells: Any = self.figure.hbar(
            y="y", left="start", right="end", height="height", color="color", source=self.bins
        )
        self.figure.add_tools(
            HoverTool(renderers=[bars], tooltips=[("run", "@name"), ("state", "@state")]),
            HoverTool(renderers=[cells], tooltips=[("task", "@lane"), ("started", "@label")]),
        )
        # the states drawn, grouped in the browser from the "state" column: of the
        # bars of a small run, of the histogram's segments of a big one (its pale
        # spans are not states)
        self.by_run = LegendItem(label=properties.field("state"), renderers=[bars])
        self.by_bin = LegendItem(label=properties.field("state"), renderers=[cells])
        self.legend = Legend(items=[self.by_run], title="state", location="top_left")
        self.figure.add_layout(self.legend, "right")
        self.note = sentence()
        self.root = column(self.note, self.figure, sizing_mode="stretch_width")
        self._drawn: tuple[Histogram, dict[str, dict[StateType, int]]] | None = None

    def update(self) -> None:
        model = self.model
        bars: dict[str, list[Any]] = {k: [] for k in _BARS}
        cells: dict[str, list[Any]] = {k: [] for k in _CELLS}
        histogram = model.histogram
        if histogram is not None:
            drawn = self._drawn
            if drawn is not None and drawn[0] is histogram and drawn[1] == model.counts:
                return  # the model re-bins a live big run only now and then
            self._drawn = (histogram, model.counts)
            self._spans(bars, histogram)
            self._cells(cells, histogram)
            title = (
                f"Timeline: {model.total:,} task runs, counted per task and "
                f"{_seconds(histogram.width)} by start time"
            )
        else:
            self._drawn = None
            now = model.clock()
            for run in model.task_runs:
                self._runs(bars, run, model.attempts.get(run.id), now)
            title = "Timeline" if not bars["lane"] else f"Timeline: {model.total:,} task runs"
        lanes = sorted(set(bars["lane"]))
        if list(self.lanes.factors) != lanes:
            self.lanes.factors = lanes
            self.figure.height = max(200, min(800, 80 + 24 * len(lanes)))
        if self.title.text != title:
            self.title.text = title
        item = self.by_run if histogram is None else self.by_bin
        if list(self.legend.items) != [item]:
            self.legend.items = [item]
        set_data(self.source, bars)
        set_data(self.bins, cells)
        empty = "" if bars["lane"] or model.run is None else "No task run has started yet."
        empty_state(self.note, self.figure, empty)

    @staticmethod
    def _runs(
        bars: dict[str, list[Any]],
        run: TaskRunRow,
        history: list[TransitionRow] | None,
        now: float,
    ) -> None:
        if history:  # one bar per attempt, ended by the state it led to
            for i, began in enumerate(history):
                if began.state is not StateType.RUNNING:
                    continue
                ended = history[i + 1] if i + 1 < len(history) else None
                end = now if ended is None else ended.timestamp
                state = began.state if ended is None else ended.state
                label = f"{run.name} (attempt {began.attempt})"
                _bar(bars, run.task_name, began.timestamp, end, label, state, COLORS[state])
        elif run.start_time is not None:
            end = run.end_time if run.end_time is not None else now
            _bar(bars, run.task_name, run.start_time, end, run.name, run.state, COLORS[run.state])

    def _spans(self, bars: dict[str, list[Any]], histogram: Histogram) -> None:
        for task, (count, first, last) in sorted(histogram.spans().items()):
            if first is None or last is None:
                continue  # none started yet
            by_state = self.model.counts.get(task, {})
            state = max(by_state, key=by_state.__getitem__) if by_state else StateType.PENDING
            _bar(bars, task, first, last, f"{task} ({count:,} runs)", state, _SPAN_COLOR)

    @staticmethod
    def _cells(cells: dict[str, list[Any]], histogram: Histogram) -> None:
        stacks: dict[tuple[str, int], list[TaskRunBin]] = {}
        for row in histogram.rows:
            if row.bin is not None:
                stacks.setdefault((row.task_name, row.bin), []).append(row)
        if not stacks:
            return
        busiest = max(sum(r.count for r in rows) for rows in stacks.values())
        for (task, index), rows in stacks.items():
            rows.sort(key=lambda r: _ORDER.get(r.state, 0))
            heights = [max(_STACK * r.count / busiest, _LEAST) for r in rows]
            scale = min(1.0, _STACK / sum(heights))
            started = sum(r.count for r in rows)
            label = f"{started:,}: " + ", ".join(f"{r.count:,} {r.state.value}" for r in rows)
            left, right = histogram.edges(index)
            bottom = -_STACK / 2
            for row, height in zip(rows, heights, strict=True):
                height *= scale
                cells["lane"].append(task)
                cells["y"].append((task, bottom + height / 2))  # a factor and an offset
                cells["height"].append(height)
                cells["start"].append(millis(left))
                cells["end"].append(millis(right))
                cells["color"].append(COLORS[row.state])
                cells["state"].append(row.state.value)
                cells["count"].append(row.count)
                cells["label"].append(label)
                bottom += height


def _bar(
    bars: dict[str, list[Any]],
    lane: str,
    start: float,
    end: float,
    name: str,
    state: StateType,
    color: str,
) -> None:
    bars["lane"].append(lane)
    bars["start"].append(millis(start))
    bars["end"].append(millis(end))
    bars["color"].append(color)
    bars["name"].append(name)
    bars["state"].append(state.value)


def _seconds(width: float) -> str:
    """A bin width for the title: ``"0.5 s"``, ``"12 s"``, ``"3.2 min"``."""
    if width < 10:
        return f"{width:.2g} s"
    return f"{width:.0f} s" if width < 120 else f"{width / 60:.1f} min"

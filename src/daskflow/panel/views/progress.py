"""Progress of the selected flow run: one stacked bar per task name, never per task run."""

from __future__ import annotations

from typing import Any

from bokeh.layouts import column
from bokeh.models import (
    BasicTicker,
    ColumnDataSource,
    FactorRange,
    HoverTool,
    NumeralTickFormatter,
)
from bokeh.models.annotations import Legend, LegendItem
from bokeh.models.ranges import DataRange1d
from bokeh.models.widgets import Div
from bokeh.plotting import figure

from daskflow.panel.model import PanelModel

from .common import PROGRESS, PROGRESS_COLORS, bucket, empty_state, escape, sentence, set_data

__all__ = ["ProgressView"]


class ProgressView:
    """Per task name: completed / cached / failed / running / pending of its total.

    Reads only the model's counts (one GROUP BY in the store), so a run of
    100,000 task runs is as cheap to draw as a run of ten.

    Attributes
    ----------
    summary : Div
        The selected run's line (name, flow, state, counts): the run page's heading.
    root
        The plot, or one sentence while the run has no task runs.
    """

    def __init__(self, model: PanelModel) -> None:
        self.model = model
        self.source = ColumnDataSource({"task": [], "label": [], **{k: [] for k in PROGRESS}})
        self.lanes = FactorRange()
        self.figure = figure(
            y_range=self.lanes,
            x_range=DataRange1d(start=0),
            height=200,
            title="Progress per task",
            toolbar_location=None,
            sizing_mode="stretch_width",
        )
        stacked = self.figure.hbar_stack(
            list(PROGRESS), y="task", height=0.7, color=list(PROGRESS_COLORS),
            source=self.source,
        )  # fmt: skip
        renderers: list[Any] = list(stacked)
        items = [
            LegendItem(label=k, renderers=[r]) for k, r in zip(PROGRESS, renderers, strict=True)
        ]
        legend = Legend(items=items, location="top_left", border_line_alpha=0)
        self.figure.add_layout(legend, "right")  # outside the plot: never over the bars
        axis = self.figure.xaxis[0]
        axis.ticker = BasicTicker(min_interval=1)  # task runs: whole numbers
        axis.formatter = NumeralTickFormatter(format="0,0")
        self.figure.add_tools(HoverTool(tooltips=[("task", "@task"), ("", "@label")]))
        self.summary = Div(text="", sizing_mode="stretch_width")
        self.note = sentence()
        self.root = column(self.note, self.figure, sizing_mode="stretch_width")

    def update(self) -> None:
        data: dict[str, list[Any]] = {"task": [], "label": [], **{k: [] for k in PROGRESS}}
        totals = dict.fromkeys(PROGRESS, 0)
        for task, by_state in sorted(self.model.counts.items()):
            buckets = dict.fromkeys(PROGRESS, 0)
            for state, n in by_state.items():
                buckets[bucket(state)] += n
            data["task"].append(task)
            data["label"].append(_label(buckets))
            for key in PROGRESS:
                data[key].append(buckets[key])
                totals[key] += buckets[key]
        if list(self.lanes.factors) != data["task"]:
            self.lanes.factors = data["task"]
            self.figure.height = max(180, min(800, 80 + 28 * len(data["task"])))
        set_data(self.source, data)
        run = self.model.run
        if run is not None:
            text = (
                f"<b>{escape(run.name)}</b> ({escape(run.flow_name)}): {run.state.value}, "
                f"{self.model.total:,} task runs: {_label(totals)}"
            )
        elif self.model.selected is not None:
            text = f"flow run {escape(self.model.selected)} is not in the run store"
        else:
            text = "no flow run recorded yet"
        if self.summary.text != text:
            self.summary.text = text
        empty = "" if data["task"] else "This flow run has no task runs yet."
        empty_state(self.note, self.figure, empty)


def _label(buckets: dict[str, int]) -> str:
    return ", ".join(f"{v:,} {k}" for k, v in buckets.items() if v) or "no task runs yet"

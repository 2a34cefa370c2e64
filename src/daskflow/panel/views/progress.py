"""Progress of the selected flow run: one stacked bar per task name, never per task run."""

from __future__ import annotations

from typing import Any

from bokeh.layouts import column
from bokeh.models import ColumnDataSource, FactorRange, HoverTool
from bokeh.models.widgets import Div
from bokeh.plotting import figure

from daskflow.panel.model import PanelModel

from .common import PROGRESS, PROGRESS_COLORS, bucket, escape, set_data

__all__ = ["ProgressView"]


class ProgressView:
    """Per task name: completed / cached / failed / running / pending of its total.

    Reads only the model's counts (one GROUP BY in the store), so a run of
    100,000 task runs is as cheap to draw as a run of ten.
    """

    def __init__(self, model: PanelModel) -> None:
        self.model = model
        self.source = ColumnDataSource({"task": [], "label": [], **{k: [] for k in PROGRESS}})
        self.lanes = FactorRange()
        self.figure = figure(
            y_range=self.lanes,
            height=200,
            title="Progress per task",
            toolbar_location=None,
            sizing_mode="stretch_width",
        )
        self.figure.hbar_stack(
            list(PROGRESS), y="task", height=0.7, color=list(PROGRESS_COLORS),
            source=self.source, legend_label=list(PROGRESS),
        )  # fmt: skip
        legend = self.figure.legend[0]
        legend.orientation = "horizontal"
        self.figure.add_layout(legend, "above")  # not over the bars
        self.figure.add_tools(HoverTool(tooltips=[("task", "@task"), ("", "@label")]))
        self.summary = Div(text="")
        self.root = column(self.summary, self.figure, sizing_mode="stretch_width")

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
            self.figure.height = max(200, min(800, 100 + 26 * len(data["task"])))
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


def _label(buckets: dict[str, int]) -> str:
    return ", ".join(f"{v:,} {k}" for k, v in buckets.items() if v) or "no task runs yet"

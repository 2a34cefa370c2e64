"""Worker CPU and memory over time, while a cluster is attached."""

from __future__ import annotations

from typing import Any

from bokeh.layouts import column, row
from bokeh.models import ColumnDataSource
from bokeh.models.widgets import Div
from bokeh.plotting import figure

from daskflow.panel.model import PanelModel

from .common import millis

__all__ = ["ResourcesView"]

_NO_CLUSTER = (
    "No cluster attached here: worker CPU and memory show on the panel of the Dask "
    "dashboard (/daskflow)."
)


class ResourcesView:
    """Mean worker CPU and total worker memory, one sample per update, rolling.

    Parameters
    ----------
    model
        The panel's model; its ``resources`` is None without a scheduler, and
        the view then says so instead of drawing.
    keep
        Samples kept (1,200: ten minutes at the page's 500 ms refresh).
    x_range
        The timeline's x range, so both plots show the same time.
    """

    def __init__(self, model: PanelModel, keep: int = 1_200, x_range: Any = None) -> None:
        self.model = model
        self.keep = keep
        self.source = ColumnDataSource({"time": [], "cpu": [], "memory": [], "workers": []})
        shared = {} if x_range is None else {"x_range": x_range}
        self.cpu = figure(
            x_axis_type="datetime", height=160, title="Worker CPU (mean %)",
            toolbar_location=None, sizing_mode="stretch_width", **shared,
        )  # fmt: skip
        self.cpu.line("time", "cpu", source=self.source, color="#1f77b4")
        self.memory = figure(
            x_axis_type="datetime", height=160, title="Worker memory (GB, total)",
            toolbar_location=None, x_range=self.cpu.x_range, sizing_mode="stretch_width",
        )  # fmt: skip
        self.memory.line("time", "memory", source=self.source, color="#ff7f0e")
        self.note = Div(text="")
        self.root = column(
            self.note, row(self.cpu, self.memory, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )  # fmt: skip

    def update(self) -> None:
        sample = self.model.resources
        note = _NO_CLUSTER if sample is None else ""
        if self.note.text != note:
            self.note.text = note
        if sample is None:
            return
        self.source.stream(
            {
                "time": [millis(sample.time)],
                "cpu": [sample.cpu],
                "memory": [sample.memory / 1e9],
                "workers": [sample.workers],
            },
            rollover=self.keep,
        )

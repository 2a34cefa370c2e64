"""Worker CPU and memory of the selected flow run, as recorded in the run store.

The flow's process sampled its cluster's workers about once a second and
recorded the samples with the run (:mod:`daskflow.store.resources`), so this
view draws them from the store alone: in ``daskflow dashboard`` with no
cluster attached, for a run that ended last week as for the one going now.
One line per worker (past :data:`MAX_LINES` workers, one line for them all:
the mean CPU and the total memory), on the timeline's time axis. A run with
no samples (``cluster="sync"``, or recorded before daskflow sampled) gets a
sentence saying so, never an empty plot. A legend to the right of each plot,
outside it, names the worker of each colour.
"""

from __future__ import annotations

from typing import Any

from bokeh.core import properties
from bokeh.layouts import column, row
from bokeh.models import ColumnDataSource, HoverTool
from bokeh.models.annotations import Legend, LegendItem
from bokeh.models.widgets import Div
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

from daskflow.panel.model import PanelModel
from daskflow.panel.usage import Usage

from .common import escape, millis, set_data

__all__ = ["MAX_LINES", "ResourcesView"]

#: Workers drawn one line each; more are drawn as one line (mean CPU, total memory).
MAX_LINES = 16
#: Seconds a live run may go without samples before the view says none are recorded.
_GRACE = 3.0
_LINES = ("worker", "xs", "cpu", "memory", "color")
_NONE = (
    "No worker resources were recorded for this run: it ran without a Dask cluster "
    '(cluster="sync"), or was recorded by a daskflow that did not sample them.'
)


class ResourcesView:
    """Recorded worker CPU (%) and memory (GB) over the selected run's life.

    Parameters
    ----------
    model
        The panel's model (its ``usage``: the selected run's samples, binned).
    x_range
        The timeline's x range, so both plots show the same time.

    Attributes
    ----------
    source : ColumnDataSource
        One row per line: ``worker``, ``xs`` (times, ms), ``cpu`` (%),
        ``memory`` (GB), ``color``.
    note : Div
        What is drawn, or why nothing is.
    """

    def __init__(self, model: PanelModel, x_range: Any = None) -> None:
        self.model = model
        self.source = ColumnDataSource({k: [] for k in _LINES})
        shared = {} if x_range is None else {"x_range": x_range}
        self.cpu = figure(
            x_axis_type="datetime", height=160, title="Worker CPU (%)",
            toolbar_location=None, sizing_mode="stretch_width", **shared,
        )  # fmt: skip
        self.memory = figure(
            x_axis_type="datetime", height=160, title="Worker memory (GB)",
            toolbar_location=None, x_range=self.cpu.x_range, sizing_mode="stretch_width",
        )  # fmt: skip
        for plot, field in ((self.cpu, "cpu"), (self.memory, "memory")):
            lines: Any = plot.multi_line(
                "xs", field, source=self.source, color="color", line_width=1.5
            )
            plot.add_tools(HoverTool(renderers=[lines], tooltips=[("worker", "@worker")]))
            # one entry per worker, grouped in the browser from the ``worker`` column
            workers = LegendItem(label=properties.field("worker"), renderers=[lines])
            plot.add_layout(Legend(items=[workers], title="worker", location="top_left"), "right")
        self.note = Div(text="")
        self.plots = row(self.cpu, self.memory, sizing_mode="stretch_width")
        self.root = column(self.note, self.plots, sizing_mode="stretch_width")

    def update(self) -> None:
        usage, run = self.model.usage, self.model.run
        data = _lines(usage) if usage is not None else {k: [] for k in _LINES}
        set_data(self.source, data)
        drawn = bool(data["worker"])
        if self.plots.visible != drawn:
            self.plots.visible = drawn
        if run is None:
            note = ""
        elif drawn and usage is not None:
            workers = usage.workers
            peak_cpu = max(r.cpu for r in usage.rows)
            peak_memory = max(r.memory for r in usage.rows) / 1e9
            note = escape(
                f"Recorded from the run's cluster: {len(workers)} worker(s), "
                f"peak CPU {peak_cpu:.0f}%, peak memory {peak_memory:.2f} GB (one worker)."
            )
        elif run.end_time is None and self.model.clock() - (run.start_time or run.created) < _GRACE:
            note = "No worker resources recorded yet for this run."
        else:
            note = escape(_NONE)
        live = self.model.resources
        if live is not None:  # a scheduler attached (the panel on the Dask dashboard)
            note += escape(
                f" Now: {live.workers} worker(s), CPU {live.cpu:.0f}% (mean), "
                f"memory {live.memory / 1e9:.2f} GB (total)."
            )
        if self.note.text != note:
            self.note.text = note


def _lines(usage: Usage) -> dict[str, list[Any]]:
    """A line per worker, or one for all of them past :data:`MAX_LINES` workers."""
    per: dict[str, dict[int, tuple[float, float]]] = {}
    for r in usage.rows:
        per.setdefault(r.worker, {})[r.bin] = (r.cpu, r.memory)
    if len(per) > MAX_LINES:
        merged: dict[int, list[tuple[float, float]]] = {}
        for by_bin in per.values():
            for index, values in by_bin.items():
                merged.setdefault(index, []).append(values)
        name = f"all {len(per)} workers (mean CPU, total memory)"
        per = {
            name: {
                i: (sum(c for c, _ in vs) / len(vs), sum(m for _, m in vs))
                for i, vs in merged.items()
            }
        }
    data: dict[str, list[Any]] = {k: [] for k in _LINES}
    for n, (worker, by_bin) in enumerate(sorted(per.items())):
        bins = sorted(by_bin)
        data["worker"].append(worker)
        data["xs"].append([millis(usage.center(i)) for i in bins])
        data["cpu"].append([by_bin[i][0] for i in bins])
        data["memory"].append([by_bin[i][1] / 1e9 for i in bins])
        data["color"].append(Category10_10[n % 10])
    return data

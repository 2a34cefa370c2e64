"""The graph of the selected flow run: which tasks fed which, coloured by state, live.

A node per task name with its task runs counted (completed, failed, running,
pending of the total), or, for a run of :data:`~daskflow.panel.rungraph.RUN_NODES`
task runs or fewer, a node per task run; arrows from upstream to downstream,
laid out in layers top down (:mod:`daskflow.panel.rungraph`). Drawn with
plain Bokeh glyphs (a ``rect`` and two ``text`` per node, an ``Arrow`` set
for the edges) rather than ``GraphRenderer``: the layout is ours anyway, and
plain sources update in place each refresh and are what the tests read.
"""

from __future__ import annotations

from typing import Any

from bokeh.layouts import column
from bokeh.models import ColumnDataSource, HoverTool, Range1d
from bokeh.models.annotations import Arrow, VeeHead
from bokeh.models.widgets import Div
from bokeh.plotting import figure

from daskflow.panel.model import PanelModel
from daskflow.panel.rungraph import BUCKETS, GraphNode, RunGraph

from .common import COLORS, escape, set_data

__all__ = ["GraphView"]

_NODES = (
    "id",
    "label",
    "text",
    "subtext",
    "x",
    "y",
    "color",
    "state",
    "summary",
    "total",
    *BUCKETS,
)
_EDGES = ("x0", "y0", "x1", "y1")
#: A node's box, in layout units (layers are 1 apart, nodes of a layer 1 apart).
_WIDTH, _HEIGHT = 0.9, 0.5
#: The least width of the plot, in nodes (a lone node is not stretched across the page).
_MIN_SPAN = 7.0
#: Past this many nodes in a layer, boxes carry no text (it would overlap): hover instead.
_LABELLED = 12


class GraphView:
    """Nodes (task names or task runs) and their dependencies, coloured by state.

    Attributes
    ----------
    nodes : ColumnDataSource
        One row per node: its label, position, colour, state, summary
        (``"59/60 done, 1 failed"``), counts per bucket (completed, failed,
        running, pending) and total; ``text`` and ``subtext`` are what the box
        shows (nothing in a layer of more than 12 nodes: hover shows it).
    edges : ColumnDataSource
        One row per dependency: where its arrow starts and ends.
    note : Div
        What the graph shows, or why it is empty.
    """

    def __init__(self, model: PanelModel) -> None:
        self.model = model
        self.nodes = ColumnDataSource({k: [] for k in _NODES})
        self.edges = ColumnDataSource({k: [] for k in _EDGES})
        self.x_range = Range1d(start=-_MIN_SPAN / 2, end=_MIN_SPAN / 2)
        self.y_range = Range1d(start=-0.5, end=0.5)
        self.figure = figure(
            height=300, title="Run graph", toolbar_location=None, sizing_mode="stretch_width",
            x_axis_type=None, y_axis_type=None, x_range=self.x_range, y_range=self.y_range,
        )  # fmt: skip
        self.figure.grid.visible = False
        self.figure.outline_line_color = None
        arrows = Arrow(
            end=VeeHead(size=8, fill_color="#888888", line_color="#888888"),
            source=self.edges, x_start="x0", y_start="y0", x_end="x1", y_end="y1",
        )  # fmt: skip
        arrows.update(line_color="#888888")  # the body's (typed otherwise than it runs)
        self.figure.add_layout(arrows)
        boxes = self.figure.rect(
            "x", "y", width=_WIDTH, height=_HEIGHT, source=self.nodes,
            fill_color="color", fill_alpha=0.85, line_color="#444444",
        )  # fmt: skip
        for field, offset, size in (("text", -7, "11px"), ("subtext", 8, "9px")):
            self.figure.text(
                "x", "y", text=field, y_offset=offset, text_font_size=size, source=self.nodes,
                text_align="center", text_baseline="middle",
            )  # fmt: skip
        self.figure.add_tools(
            HoverTool(
                renderers=[boxes],
                tooltips=[("", "@label"), ("state", "@state"), ("task runs", "@summary")],
            )
        )
        self.note = Div(text="")
        self.root = column(self.note, self.figure, sizing_mode="stretch_width")

    def update(self) -> None:
        graph = self.model.graph
        nodes: dict[str, list[Any]] = {k: [] for k in _NODES}
        edges: dict[str, list[Any]] = {k: [] for k in _EDGES}
        if graph is not None:
            at: dict[str, GraphNode] = {}
            for node in graph.nodes:
                at[node.id] = node
                nodes["id"].append(node.id)
                nodes["label"].append(node.label + (" ↻" if node.id in graph.loops else ""))
                nodes["x"].append(node.x)
                nodes["y"].append(node.y)
                nodes["color"].append(COLORS[node.state])
                nodes["state"].append(node.state.value)
                nodes["summary"].append(
                    node.state.value.lower() if graph.by_run else _summary(node)
                )
                nodes["total"].append(node.total)
                for key in BUCKETS:
                    nodes[key].append(node.counts.get(key, 0))
            for upstream, downstream in graph.edges:
                start, end = at[upstream], at[downstream]
                edges["x0"].append(start.x)
                edges["y0"].append(start.y - _HEIGHT / 2)
                edges["x1"].append(end.x)
                edges["y1"].append(end.y + _HEIGHT / 2)
        widest = max((nodes["y"].count(y) for y in set(nodes["y"])), default=0)
        labelled = widest <= _LABELLED
        blank = [""] * len(nodes["label"])
        nodes["text"] = list(nodes["label"]) if labelled else blank
        nodes["subtext"] = list(nodes["summary"]) if labelled else blank
        set_data(self.nodes, nodes)
        set_data(self.edges, edges)
        self._fit(nodes["x"], nodes["y"])
        note = _note(graph)
        if self.note.text != note:
            self.note.text = note

    def _fit(self, xs: list[float], ys: list[float]) -> None:
        """Ranges around the nodes, at least :data:`_MIN_SPAN` wide; a height per layer."""
        span = max(_MIN_SPAN, max(xs, default=0) - min(xs, default=0) + 1.2)
        top, bottom = max(ys, default=0) + 0.5, min(ys, default=0) - 0.5
        ranges = ((self.x_range, -span / 2, span / 2), (self.y_range, bottom, top))
        for plot_range, start, end in ranges:
            if (plot_range.start, plot_range.end) != (start, end):
                plot_range.update(start=start, end=end)
        height = max(200, min(900, 90 + 90 * len(set(ys))))
        if self.figure.height != height:
            self.figure.height = height


def _summary(node: GraphNode) -> str:
    """``"18/20 done, 1 failed, 1 running"`` (a task run: its state)."""
    counts = node.counts
    text = f"{counts.get('completed', 0):,}/{node.total:,} done"
    for key in ("failed", "running"):
        if counts.get(key):
            text += f", {counts[key]:,} {key}"
    return text


def _note(graph: RunGraph | None) -> str:
    if graph is None:
        return ""
    if not graph.nodes:
        return "No task runs yet."
    if not graph.edges and len(graph.nodes) > 1:
        return (
            "No dependencies were recorded for this run: its tasks passed no futures to one "
            "another, or it was recorded by a daskflow that did not keep them."
        )
    what = "task run" if graph.by_run else "task name"
    return escape(f"{len(graph.nodes):,} {what}s, {len(graph.edges):,} dependencies.")

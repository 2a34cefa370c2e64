"""The panel's layout: a run list above a run page of tabs, sized to the window.

::

    daskflow                                         (the store read)
    [alerts: flow runs that failed since you last looked, each a link]
    flow runs | deployments                          (the two pages)
    Flow runs  [flow] [state] [follow the newest run]
    | id | run | flow | state | start (UTC) | duration | task runs |
    <run name> (<flow>): <state>, <counts>           (the run page's heading)
    overview | graph | timeline | logs | artifacts | parameters | resources
    ...the selected tab...

Everything stretches to the window's width (Bokeh ``sizing_mode``); plots
keep a height fitted to their lanes. A section with nothing to show says so
in one sentence instead of drawing an empty plot or table. The sections are
named in :data:`SECTIONS`; one not given a view holds a sentence. The
deployments (:mod:`daskflow.panel.views.deployments`) are the second page,
beside the flow runs (:func:`pages`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bokeh.layouts import column
from bokeh.models import TabPanel, Tabs
from bokeh.models.widgets import Div

from daskflow.panel.model import PanelModel
from daskflow.panel.views.common import empty_state, escape, sentence

__all__ = ["PAGES", "SECTIONS", "RunPage", "header", "pages"]

#: The run page's tabs, in order.
SECTIONS = ("overview", "graph", "timeline", "logs", "artifacts", "parameters", "resources")
#: The panel's pages, in order.
PAGES = ("flow runs", "deployments")
#: What a section says while the panel has no view for it.
PLANNED = {
    "graph": "The run's graph of task dependencies is not shown in this version of the panel.",
    "artifacts": "The run's artifacts are not shown in this version of the panel.",
}


class RunPage:
    """The selected flow run's page: a heading line and a tab per section.

    Parameters
    ----------
    model
        The panel's model.
    heading
        The run's line (``ProgressView.summary``).
    sections
        ``{name: Bokeh model}`` for names of :data:`SECTIONS`; the others
        hold a sentence (:data:`PLANNED`).

    Attributes
    ----------
    tabs : Tabs
        One tab per section, hidden while no flow run is selected.
    """

    def __init__(self, model: PanelModel, heading: Div, sections: Mapping[str, Any]) -> None:
        unknown = set(sections) - set(SECTIONS)
        if unknown:
            raise ValueError(f"unknown sections of the run page: {sorted(unknown)}")
        self.model = model
        panels = []
        for name in SECTIONS:
            child = sections.get(name)
            if child is None:
                child = sentence(escape(PLANNED.get(name, "Nothing to show here yet.")))
            panels.append(TabPanel(child=child, title=name))
        self.tabs = Tabs(tabs=panels, sizing_mode="stretch_width")
        self.note = sentence()
        heading.styles = {"font-size": "15px", "margin-top": "10px"}
        self.heading = heading
        self.root = column(heading, self.note, self.tabs, sizing_mode="stretch_width")

    def update(self) -> None:
        model = self.model
        if model.run is not None:
            empty = ""
        elif model.selected is not None:
            empty = f"Flow run {model.selected} is not in the run store."
        else:
            empty = (
                "No flow run is recorded in this run store yet: run a flow and it shows "
                "here as it goes."
            )
        empty_state(self.note, self.tabs, empty)
        if self.heading.visible != (not empty):
            self.heading.visible = not empty


def pages(flow_runs: Any, deployments: Any) -> Tabs:
    """The two pages of :data:`PAGES` as tabs: the flow runs (shown first), the deployments."""
    children = (flow_runs, deployments)
    panels = [
        TabPanel(child=child, title=title) for title, child in zip(PAGES, children, strict=True)
    ]
    return Tabs(tabs=panels, sizing_mode="stretch_width")


def header(store_where: str) -> Div:
    """The page's title line, naming the run store it reads."""
    return Div(
        text=(
            "<span style='font-size:20px;font-weight:bold'>daskflow</span>"
            f"<span style='color:#777;margin-left:12px'>run store {escape(store_where)}</span>"
        ),
        sizing_mode="stretch_width",
    )

"""The panel's views: each a ``source``, a ``root`` and an ``update()``.

The shape of distributed's dashboard components: ``root`` is the Bokeh model
placed in the page, ``update()`` reads the :class:`~daskflow.panel.model.PanelModel`
and sets ``source.data`` (only when it changed, so an idle page sends nothing
to the browser). Nothing here scales with the number of task runs: progress
is one bar per task name, and past :data:`~daskflow.panel.model.TIMELINE_LIMIT`
runs the timeline draws counts per task name and time bin.
"""

from daskflow.panel.views.alerts import AlertsView
from daskflow.panel.views.artifacts import ArtifactsView
from daskflow.panel.views.deployments import DeploymentsView
from daskflow.panel.views.failures import FailuresView
from daskflow.panel.views.graph import GraphView
from daskflow.panel.views.logs import LogsView
from daskflow.panel.views.parameters import ParametersView
from daskflow.panel.views.progress import ProgressView
from daskflow.panel.views.resources import ResourcesView
from daskflow.panel.views.runs import RunsView
from daskflow.panel.views.timeline import TimelineView

__all__ = [
    "VIEWS",
    "AlertsView",
    "ArtifactsView",
    "DeploymentsView",
    "FailuresView",
    "GraphView",
    "LogsView",
    "ParametersView",
    "ProgressView",
    "ResourcesView",
    "RunsView",
    "TimelineView",
]

#: Every view of the model, in the order the page shows them. Two more read the
#: store through readers of their own: :class:`ArtifactsView` (the run page's
#: artifacts tab) and :class:`DeploymentsView` (a page of its own).
VIEWS = (
    AlertsView,
    RunsView,
    ProgressView,
    GraphView,
    FailuresView,
    TimelineView,
    LogsView,
    ParametersView,
    ResourcesView,
)

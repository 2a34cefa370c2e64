"""One panel page: the model, its views, and the refresh that keeps them live.

Every ``refresh_ms`` the page reads the store in a thread (so that a slow
query never holds up the event loop of the Dask scheduler that may serve the
page): the model, the selected run's artifacts and, every few seconds, the
deployments; then, back on the loop and under the document's lock, it reads
the scheduler's workers and updates every view. Bokeh runs one refresh at a
time, and a user's clicks wait for the refresh in progress.

The page reads, but for two writes a user asks for: the alerts' "seen"
mark, and a run request from the deployments page's form, recorded as
``daskflow deployments run`` records one (a serving process runs it). No
widget runs code or changes a run.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

__all__ = ["make_document"]

logger = logging.getLogger("daskflow.panel")


def make_document(
    doc: Any, store_url: str | None = None, scheduler: Any = None, refresh_ms: int = 500
) -> None:
    """Fill a Bokeh document with the panel (a Bokeh ``FunctionHandler``'s function).

    Parameters
    ----------
    doc
        The ``bokeh.document.Document`` of one browser session.
    store_url
        The run store to read (``daskflow.store.open_store``); None: the
        configured one.
    scheduler
        The ``distributed.Scheduler`` when served on its dashboard (worker
        CPU and memory), else None.
    refresh_ms
        How often the page reads the store and updates its views.

    Notes
    -----
    A ``?run=ID`` query argument selects that flow run (an id or a unique
    prefix of 6 characters or more, as the CLI shows them); without it the
    page follows the newest run.

    Examples
    --------
    >>> from bokeh.document import Document
    >>> doc = Document()
    >>> make_document(doc, store_url="memory")
    >>> doc.title
    'daskflow'
    """
    from bokeh.layouts import column

    from daskflow.panel.artifacts import RunArtifacts
    from daskflow.panel.deployments import Deployments
    from daskflow.panel.layout import RunPage, header, pages
    from daskflow.panel.model import PanelModel
    from daskflow.panel.views import (
        AlertsView,
        ArtifactsView,
        DeploymentsView,
        FailuresView,
        GraphView,
        LogsView,
        ParametersView,
        ProgressView,
        ResourcesView,
        RunsView,
        TimelineView,
    )
    from daskflow.store import open_store

    store = open_store(store_url)
    doc.on_session_destroyed(lambda context: store.close())  # one store per browser tab
    model = PanelModel(store, scheduler)
    wanted = _run_argument(doc)
    if wanted:
        model.select(wanted)
    model.refresh()
    artifacts, deployments = RunArtifacts(model), Deployments(store, model.clock)
    artifacts.refresh()
    deployments.refresh()
    alerts, runs, progress = AlertsView(model), RunsView(model), ProgressView(model)
    timeline, failures = TimelineView(model), FailuresView(model)
    logs, parameters = LogsView(model), ParametersView(model)
    resources = ResourcesView(model, x_range=timeline.figure.x_range)
    graph = GraphView(model)
    artifacts_view, deployments_view = ArtifactsView(artifacts), DeploymentsView(deployments)
    page = RunPage(
        model,
        progress.summary,
        {
            "overview": column(progress.root, failures.root, sizing_mode="stretch_width"),
            "graph": graph.root,
            "timeline": timeline.root,
            "logs": logs.root,
            "artifacts": artifacts_view.root,
            "parameters": parameters.root,
            "resources": resources.root,  # recorded with the run: also without a cluster
        },
    )
    views: list[Any] = [alerts, runs, progress, graph, timeline, failures, logs, parameters]
    views += [resources, artifacts_view, deployments_view, page]
    for view in views:
        view.update()
    failing: list[str] = []  # the last error, logged once rather than every refresh

    def read_store() -> None:
        model.refresh_store()
        artifacts.refresh()
        deployments.refresh()

    async def refresh() -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(None, read_store)
        except Exception as exc:
            if failing != [repr(exc)]:
                logger.warning("daskflow panel: reading the run store failed", exc_info=True)
                failing[:] = [repr(exc)]
            return
        failing.clear()
        model.refresh_resources()
        for view in views:
            view.update()

    doc.title = "daskflow"
    where = str(getattr(store, "where", getattr(store, "url", "")))
    flow_runs = column(runs.root, page.root, sizing_mode="stretch_width")
    doc.add_root(
        column(
            header(where),
            alerts.root,
            pages(flow_runs, deployments_view.root),
            sizing_mode="stretch_width",
        )
    )
    doc.add_periodic_callback(refresh, refresh_ms)


def _run_argument(doc: Any) -> str | None:
    """The ``run`` query argument of the page's URL, if served with one."""
    try:
        arguments = doc.session_context.request.arguments
    except AttributeError:  # no session (a test's bare Document)
        return None
    values = arguments.get("run") or []
    value = values[0] if values else None
    return value.decode() if isinstance(value, bytes) else value

"""One panel page: the model, its views, and the refresh that keeps them live."""

from __future__ import annotations

from typing import Any

__all__ = ["make_document"]


def make_document(
    doc: Any, store_url: str | None = None, scheduler: Any = None, refresh_ms: int = 500
) -> None:
    """Fill a Bokeh document with the panel (a Bokeh ``FunctionHandler``'s function).

    Parameters
    ----------
    doc
        The ``bokeh.document.Document`` of one browser session.
    store_url
        The run store to read; None: the configured one.
    scheduler
        The ``distributed.Scheduler`` when served on its dashboard (worker
        CPU and memory), else None.
    refresh_ms
        How often the page reads the store and updates its views.

    A ``?run=ID`` query argument selects that flow run (ids or unique
    prefixes, as the CLI shows them).
    """
    from bokeh.layouts import column, row
    from bokeh.models.widgets import Div

    from daskflow.panel.model import PanelModel
    from daskflow.panel.views import (
        AlertsView,
        FailuresView,
        ProgressView,
        ResourcesView,
        RunsView,
        TimelineView,
    )
    from daskflow.store import open_store

    store = open_store(store_url)
    model = PanelModel(store, scheduler)
    wanted = _run_argument(doc)
    if wanted:
        found = store.get_flow_run(wanted)
        model.select(found.id if found is not None else None)
    model.refresh()
    alerts, runs, progress = AlertsView(model), RunsView(model), ProgressView(model)
    timeline, failures = TimelineView(model), FailuresView(model)
    resources = ResourcesView(model, x_range=timeline.figure.x_range)
    views: list[Any] = [alerts, runs, progress, timeline, failures, resources]

    def update() -> None:
        model.refresh()
        for view in views:
            view.update()

    for view in views:
        view.update()
    doc.title = "daskflow"
    doc.add_root(
        column(
            Div(text="<h2 style='margin:4px 0'>daskflow</h2>"),
            alerts.root,
            row(runs.root, progress.root, sizing_mode="stretch_width"),
            timeline.root,
            resources.root,
            failures.root,
            sizing_mode="stretch_width",
        )
    )
    doc.add_periodic_callback(update, refresh_ms)


def _run_argument(doc: Any) -> str | None:
    try:
        arguments = doc.session_context.request.arguments
    except AttributeError:
        return None
    values = arguments.get("run") or []
    return values[0].decode() if values else None

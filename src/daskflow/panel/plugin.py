"""The panel as a page of the Dask dashboard: ``/daskflow`` beside ``/status``.

:class:`PanelPlugin` is a scheduler plugin: registered with
``client.register_plugin``, it mounts a second Bokeh application on the
scheduler's own HTTP server (the dashboard port, 8787 by default) and adds
"daskflow" to the dashboard's navigation bar, so the panel opens from the
Dask dashboard users already watch. The page reads the run store, and the
scheduler's worker metrics for the resources view.

daskflow mounts it only where the scheduler runs in the flow's own process
(the embedded ``LocalCluster``, or any ``LocalCluster`` the user made): the
panel then reads the same store the flow writes. For a remote scheduler the
flow's log line names ``daskflow dashboard`` instead (see
``research/dask-integration.md`` §1: a remote scheduler would need daskflow
installed beside it and access to the store). The page is read-only.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin

__all__ = ["PanelPlugin", "mount_panel", "panel_link"]

logger = logging.getLogger("daskflow.panel")

ROUTE = "/daskflow"


class PanelPlugin(SchedulerPlugin):
    """Serves the panel at ``/daskflow`` on the scheduler's dashboard.

    Parameters
    ----------
    store_url
        The run store the page reads (resolved where the flow runs).
    """

    name = "daskflow-panel"
    idempotent = True  # a second registration is a no-op: one page per scheduler

    def __init__(self, store_url: str | None = None) -> None:
        self.store_url = store_url

    async def start(self, scheduler: Any) -> None:
        from distributed.dashboard.core import BokehApplication
        from tornado.ioloop import IOLoop

        if getattr(scheduler, "http_application", None) is None:
            return  # a scheduler without a dashboard
        document = functools.partial(_page, self.store_url)
        app = BokehApplication({ROUTE: document}, scheduler)
        scheduler.http_application.add_application(app)
        app.initialize(IOLoop.current())
        app.start()
        _add_to_navigation(scheduler)


def _page(store_url: str | None, scheduler: Any, extra: dict[str, Any], doc: Any) -> None:
    from daskflow.panel.document import make_document

    make_document(doc, store_url=store_url, scheduler=scheduler)
    try:  # the Dask dashboard's look and navigation bar (internal API: optional)
        from distributed.dashboard.components.scheduler import env

        doc.template = env.get_template("simple.html")
        doc.template_variables.update(extra)
    except Exception:
        logger.debug("daskflow: no Dask dashboard template for the panel", exc_info=True)


def _add_to_navigation(scheduler: Any) -> None:
    try:  # internal API: the memoized template variables every page shares
        from distributed.dashboard.scheduler import template_variables

        pages = template_variables(scheduler)["pages"]
        if "daskflow" not in pages:
            pages.append("daskflow")
    except Exception:
        logger.debug("daskflow: could not add the panel to the navigation bar", exc_info=True)


def mount_panel(client: Any, store_url: str | None) -> bool:
    """Mount the panel on ``client``'s scheduler when it runs in this process.

    Returns True when the page is (now) served.
    """
    cluster = getattr(client, "cluster", None)
    if cluster is None or getattr(cluster, "scheduler", None) is None:
        return False  # a remote scheduler: see `daskflow dashboard`
    try:
        client.register_plugin(PanelPlugin(store_url))
    except Exception:
        logger.warning("daskflow: could not mount the panel on the Dask dashboard", exc_info=True)
        return False
    return True


def panel_link(client: Any, flow_run_id: str | None = None) -> str | None:
    """The panel's URL on ``client``'s dashboard (for one flow run), or None."""
    link = getattr(client, "dashboard_link", None)
    if not link or not link.endswith("/status"):
        return None
    url = link[: -len("/status")] + ROUTE
    return f"{url}?run={flow_run_id}" if flow_run_id else url

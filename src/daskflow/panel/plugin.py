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

Where the scheduler's dashboard listens beyond 127.0.0.1 (the user gave
``dashboard_address=":8787"`` or a host), the panel is mounted only behind a
password (:mod:`daskflow.panel.auth`: basic auth on ``/daskflow`` and its
websocket); without one it is not mounted, and one INFO line says how to
get it. Its websocket takes pages from the dashboard's own addresses (and
``daskflow.dashboard.allow-origin``) only, not Dask's ``*``.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Literal

from distributed.diagnostics.plugin import SchedulerPlugin

from daskflow import config

__all__ = ["PanelPlugin", "dashboard_link", "mount_panel", "panel_link"]

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
        from tornado.ioloop import IOLoop

        if getattr(scheduler, "http_application", None) is None:
            return  # a scheduler without a dashboard
        hosts, port = _listening(scheduler)
        password = _password_for(hosts, port)
        if password is False:
            return
        app = _application(self.store_url, scheduler, password, hosts, port)
        scheduler.http_application.add_application(app)
        app.initialize(IOLoop.current())
        app.start()
        _add_to_navigation(scheduler)


def _listening(scheduler: Any) -> tuple[list[str], int]:
    """The hosts and port the scheduler's dashboard listens on."""
    from distributed.comm.utils import get_tcp_server_addresses

    addresses = get_tcp_server_addresses(scheduler.http_server)
    return [str(address[0]) for address in addresses], int(addresses[0][1])


def _password_for(hosts: list[str], port: int) -> str | Literal[False] | None:
    """The panel's password on these hosts: None on loopback, False if it is missing."""
    from daskflow.panel.auth import ENV_PASSWORD, configured_password, is_loopback

    exposed = [host for host in hosts if not is_loopback(host)]
    if not exposed:
        return None
    password = configured_password()
    if password is None:
        logger.info(
            "daskflow: the Dask dashboard listens on %s:%d, beyond 127.0.0.1, so the daskflow "
            "panel is not mounted there: set daskflow.dashboard.password (or the env var %s) "
            "to serve it behind a password, or run `daskflow dashboard`",
            exposed[0],
            port,
            ENV_PASSWORD,
        )
        return False
    return password


def _application(
    store_url: str | None, scheduler: Any, password: str | None, hosts: list[str], port: int
) -> Any:
    """The panel's Bokeh application for the scheduler's HTTP server.

    Built as ``distributed.dashboard.core.BokehApplication`` builds Dask's
    pages, with the websocket origins narrowed and, beyond loopback, the
    password in front.
    """
    import dask
    from bokeh.application import Application
    from bokeh.application.handlers.function import FunctionHandler
    from distributed.dashboard.core import DaskBokehTornado

    from daskflow.panel.auth import PasswordGate, websocket_origins

    page = functools.partial(_page, store_url, scheduler, {"prefix": "/"})
    options = dict(dask.config.get("distributed.scheduler.dashboard.bokeh-application"))
    options.pop("allow_websocket_origin", None)  # Dask's "*": ours are narrower
    given = config.get("dashboard.allow-origin") or []
    origins = sorted({o for host in hosts for o in websocket_origins(host, port, given)})
    applications = {ROUTE: Application(FunctionHandler(page))}
    common = {
        "prefix": "/",
        "use_index": False,
        "extra_websocket_origins": origins,
        "absolute_url": "",
        **options,
    }
    if password is None:
        return DaskBokehTornado(applications, **common)

    class GatedDaskBokehTornado(PasswordGate, DaskBokehTornado):
        """Dask's Bokeh application with the panel's routes behind the password."""

    return GatedDaskBokehTornado(applications, password=password, **common)


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
    scheduler = getattr(cluster, "scheduler", None)
    if scheduler is None:
        return False  # a remote scheduler: see `daskflow dashboard`
    served = getattr(scheduler, "http_server", None) is not None
    if served and _password_for(*_listening(scheduler)) is False:
        return False  # beyond loopback without a password: said so in the log
    try:
        client.register_plugin(PanelPlugin(store_url))
    except Exception:
        logger.warning("daskflow: could not mount the panel on the Dask dashboard", exc_info=True)
        return False
    return True


def dashboard_link(client: Any) -> str:
    """``client.dashboard_link``, where the dashboard really answers.

    Dask builds the link from the scheduler's address. An in-process
    scheduler (``inproc://<machine IP>/...``) names the machine's IP, where
    a dashboard on 127.0.0.1 does not answer: the link then names the
    address the dashboard listens on.
    """
    link = str(getattr(client, "dashboard_link", None) or "")
    scheduler: Any = getattr(getattr(client, "cluster", None), "scheduler", None)
    server = getattr(scheduler, "http_server", None)
    if not link or server is None or not str(scheduler.address).startswith("inproc"):
        return link
    from distributed.utils import format_dashboard_link

    from daskflow.panel.auth import is_loopback

    host = str(server.address)
    return format_dashboard_link(host, server.port) if is_loopback(host) else link


def panel_link(client: Any, flow_run_id: str | None = None) -> str | None:
    """The panel's URL on ``client``'s dashboard (for one flow run), or None."""
    link = dashboard_link(client)
    if not link or not link.endswith("/status"):
        return None
    url = link[: -len("/status")] + ROUTE
    return f"{url}?run={flow_run_id}" if flow_run_id else url

"""``daskflow dashboard``: the panel on a Bokeh server of its own, reading the store.

Works with no cluster running: it shows the run history of the store (and
live runs as their events reach the store, within about a second). Read-only.

It binds 127.0.0.1 unless told otherwise: the panel shows parameters, errors
and logs, which are not for everyone on the network. On any other address
it needs a password (:mod:`daskflow.panel.auth`: HTTP basic auth, user
``daskflow``, the websocket included) and refuses to start without one. The
websocket takes connections only from pages opened by the server's own
address (or names added with ``allow_origin``), whatever the address.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

from bokeh.application import Application
from bokeh.application.handlers.function import FunctionHandler
from bokeh.server.server import BaseServer
from bokeh.server.tornado import BokehTornado
from bokeh.server.util import bind_sockets
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop

from daskflow.panel.auth import PasswordGate, require_password, websocket_origins

__all__ = ["free_port", "make_server"]


def make_server(
    host: str = "127.0.0.1",
    port: int = 8788,
    store_url: str | None = None,
    *,
    allow_origin: Iterable[str] = (),
) -> Any:
    """A started ``bokeh.server.server.BaseServer`` serving the panel at ``/daskflow``.

    ``port=0`` picks a free port (read it back from ``server.port``). Run
    ``server.io_loop.start()`` to serve until interrupted.

    Parameters
    ----------
    host
        The address to listen on. Beyond loopback the panel asks for the
        password of ``daskflow.dashboard.password`` (else the env var
        ``DASKFLOW_DASHBOARD_PASSWORD``).
    port
        The port; 0 for any free one.
    store_url
        The run store to read (None: the configured one).
    allow_origin
        More names the page may be opened by (``name``, ``name:port``), for
        a proxy or a DNS name: its websocket refuses other origins.

    Raises
    ------
    ConfigurationError
        ``host`` is beyond loopback and no password is configured.

    Examples
    --------
    >>> server = make_server(port=0)  # doctest: +SKIP
    >>> f"http://127.0.0.1:{server.port}/daskflow"  # doctest: +SKIP
    """
    import networkx  # noqa: F401  (the run graph's layout: imported now, not at first paint)

    from daskflow.panel.document import make_document

    password = require_password(host)  # before binding: refuse without a password
    page: Callable[[Any], None] = functools.partial(make_document, store_url=store_url)
    sockets, port = bind_sockets(host, port)
    try:
        options: dict[str, Any] = {
            "extra_websocket_origins": websocket_origins(host, port, allow_origin),
            "redirect_root": True,
        }
        applications = {"/daskflow": Application(FunctionHandler(page))}
        if password is None:
            tornado_app = BokehTornado(applications, **options)
        else:
            tornado_app = _GatedBokehTornado(applications, password=password, **options)
        http_server = HTTPServer(tornado_app)
        http_server.add_sockets(sockets)
    except Exception:
        for sock in sockets:
            sock.close()
        raise
    server = BaseServer(IOLoop.current(), tornado_app, http_server)
    server.start()
    return server


class _GatedBokehTornado(PasswordGate, BokehTornado):
    """Bokeh's server application with every route behind the password."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    import socket

    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])

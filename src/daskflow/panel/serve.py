"""``daskflow dashboard``: the panel on a Bokeh server of its own, reading the store.

Works with no cluster running: it shows the run history of the store (and
live runs as their events reach the store, within about a second). It binds
127.0.0.1 unless told otherwise: the panel shows parameters, errors and
logs, which are not for everyone on the network. Read-only.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

__all__ = ["make_server"]


def make_server(host: str = "127.0.0.1", port: int = 8788, store_url: str | None = None) -> Any:
    """A started ``bokeh.server.server.Server`` serving the panel at ``/daskflow``.

    ``port=0`` picks a free port (read it back from ``server.port``). Run
    ``server.io_loop.start()`` to serve until interrupted.
    """
    from bokeh.application import Application
    from bokeh.application.handlers.function import FunctionHandler
    from bokeh.server.server import Server

    from daskflow.panel.document import make_document

    if port == 0:
        port = free_port(host)
    page: Callable[[Any], None] = functools.partial(make_document, store_url=store_url)
    local = host in ("127.0.0.1", "localhost", "::1")
    server = Server(
        {"/daskflow": Application(FunctionHandler(page))},
        address=host,
        port=port,
        # a page opened by its address: the browser's origin is host:port
        allow_websocket_origin=[f"127.0.0.1:{port}", f"localhost:{port}"] if local else ["*"],
        redirect_root=True,
    )
    server.start()
    return server


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    import socket

    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])

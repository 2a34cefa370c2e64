"""``daskflow dashboard``: the panel on its own Bokeh server, reading the run store.

It listens on 127.0.0.1 by default. ``--host`` with any other address needs
a password (config ``daskflow.dashboard.password`` or env
``DASKFLOW_DASHBOARD_PASSWORD``; HTTP basic auth, user ``daskflow``): without
one the command refuses to start (exit 2, one line naming both).
"""

from __future__ import annotations

import click

__all__ = ["dashboard_command"]


@click.command("dashboard")
@click.option(
    "--port", default=8788, show_default=True, type=click.IntRange(0, 65535), help="0: any free."
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (0.0.0.0 to let other machines in: the panel shows "
    "parameters, errors and logs, so it then asks for the password of config "
    "daskflow.dashboard.password or env DASKFLOW_DASHBOARD_PASSWORD, user 'daskflow').",
)
@click.option(
    "--allow-origin",
    "allow_origin",
    multiple=True,
    metavar="NAME[:PORT]",
    help="Another name the page is opened by (a DNS name, a proxy); repeatable. "
    "The websocket refuses pages from names not listed.",
)
@click.pass_context
def dashboard_command(
    ctx: click.Context, port: int, host: str, allow_origin: tuple[str, ...]
) -> None:
    """Serve the daskflow panel: runs, progress, timeline, failures, alerts.

    It reads the run store (--store, or the configured one) and needs no
    cluster: it shows the history, and runs still going as their events
    reach the store. Read-only. Stop it with Ctrl-C.

    \b
    Examples:
      daskflow dashboard
      daskflow --store runs.db dashboard --port 0
      DASKFLOW_DASHBOARD_PASSWORD=... daskflow dashboard --host 0.0.0.0
    """
    from daskflow.panel.serve import make_server

    server = make_server(host, port, ctx.meta.get("daskflow.store"), allow_origin=allow_origin)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"daskflow panel at http://{shown}:{server.port}/daskflow (Ctrl-C to stop)")
    try:
        server.io_loop.start()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()

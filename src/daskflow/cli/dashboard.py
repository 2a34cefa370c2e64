"""``daskflow dashboard``: the panel on its own Bokeh server, reading the run store."""

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
    "parameters, errors and logs).",
)
@click.pass_context
def dashboard_command(ctx: click.Context, port: int, host: str) -> None:
    """Serve the daskflow panel: runs, progress, timeline, failures, alerts.

    It reads the run store (--store, or the configured one) and needs no
    cluster: it shows the history, and runs still going as their events
    reach the store. Read-only. Stop it with Ctrl-C.

    \b
    Examples:
      daskflow dashboard
      daskflow --store runs.db dashboard --port 0
    """
    from daskflow.panel.serve import make_server

    server = make_server(host, port, ctx.meta.get("daskflow.store"))
    click.echo(f"daskflow panel at http://{host}:{server.port}/daskflow (Ctrl-C to stop)")
    try:
        server.io_loop.start()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()

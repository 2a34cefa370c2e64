"""``daskflow serve FILE.py:FLOW --cron EXPR | --interval DURATION``: a flow on a schedule.

With ``--name NAME`` it serves the deployment ``FLOW/NAME`` (the flow's name
by default), which ``daskflow deployments run`` asks for runs; the schedule
may then be left out (runs on request only).

The command loads the flow like ``daskflow run`` and hands it to
:func:`daskflow.serving.serve`, which runs until Ctrl-C or SIGTERM (exit code
0). A bad schedule or parameter is a usage error (exit 2) before anything
starts.
"""

from __future__ import annotations

import signal
import threading

import click

from daskflow.cli.run import load_flow, param_option, parse_parameters

__all__ = ["serve_command"]


@click.command("serve")
@click.argument("target", metavar="FILE.py[:FLOW]")
@click.option(
    "--name",
    metavar="NAME",
    help="The deployment's name (default: the flow's); with it, the schedule is optional "
    "and runs start on request (daskflow deployments run FLOW/NAME).",
)
@click.option("--cron", metavar="EXPR", help='A cron expression, e.g. "0 * * * *" (hourly).')
@click.option(
    "--interval",
    metavar="DURATION",
    help='Or an interval: seconds, or "30s", "5m", "1h", "1d".',
)
@click.option(
    "--timezone",
    metavar="TZ",
    help='The timezone of --cron, an IANA name like "Europe/Berlin" (default UTC).',
)
@param_option
@click.option(
    "--catch-up",
    is_flag=True,
    help="Start one run at once for slots missed while no serve process ran (default: skip them).",
)
@click.option(
    "--limit",
    default=1,
    show_default=True,
    type=click.IntRange(min=0),
    help="At most N runs at a time; a slot that comes while N run waits for one to end "
    "(0: no limit).",
)
@click.option(
    "--cluster",
    metavar="SPEC",
    help='Where runs run: "sync", "local" or a scheduler address (default: the flow\'s own).',
)
def serve_command(
    target: str,
    name: str | None,
    cron: str | None,
    interval: str | None,
    timezone: str | None,
    params: tuple[str, ...],
    catch_up: bool,
    limit: int,
    cluster: str | None,
) -> None:
    """Start runs of flow FLOW from FILE.py on a schedule, until Ctrl-C or SIGTERM.

    Each run is recorded SCHEDULED as soon as its slot is known (`daskflow runs
    list` shows it), starts at its slot, and goes on like any flow run; a run
    that fails does not stop serving. On Ctrl-C or SIGTERM, runs still going
    are cancelled and recorded CANCELLED. Slots missed while no serve process
    ran are skipped unless --catch-up is given.

    The process also serves the deployment FLOW/NAME (--name, default the
    flow's name): `daskflow deployments run FLOW/NAME` asks it for a run,
    which starts within about a second (queued under --limit).

    \b
    Examples:
      daskflow serve etl.py:etl --cron "0 6 * * *" --timezone Europe/Berlin
      daskflow serve etl.py:etl --interval 5m -p source=s3://bucket/raw
      daskflow serve etl.py:etl --name nightly -p source=s3://bucket/raw
    """
    from daskflow.engine import quiet

    flow = load_flow(target)
    parameters = parse_parameters(params, flow)
    if cluster:
        flow = flow.with_options(cluster=cluster)
    both, neither = cron is not None and interval is not None, cron is None and interval is None
    if both or (neither and not name):
        raise click.UsageError(
            "give exactly one of --cron and --interval (or --name NAME alone: runs on request)"
        )
    if threading.current_thread() is threading.main_thread():
        # Ctrl-C stops serving (serve's own handler, while it serves); serve then
        # restores this one, so a Ctrl-C during the rest of the exit (closing the
        # cluster) does nothing instead of raising KeyboardInterrupt with a traceback
        signal.signal(signal.SIGINT, quiet.ignore_interrupt)
    flow.serve(
        name,
        cron=cron,
        interval=interval,
        parameters=parameters,
        timezone=timezone,
        catch_up=catch_up,
        limit=limit or None,
    )

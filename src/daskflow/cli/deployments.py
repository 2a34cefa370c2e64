"""``daskflow deployments list|run``: the deployments served from the run store.

``list`` reads the ``deployments`` table: each deployment's schedule, whether
a live process serves it (a heartbeat younger than
:data:`~daskflow.serving.requests.LIVE_WITHIN`) and how many of its run
requests wait. ``run`` records a run request without the flow's code: the
``-p`` values are read against the deployment's recorded parameter schema
(JSON, except for parameters of type string, kept as given) and checked
against it before anything is recorded; it prints the new run's id and
returns, or with ``--watch`` follows the run to its end and exits like
``daskflow run`` (0 completed, 1 not).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import click

from daskflow.cli.interrupt import INTERRUPTED
from daskflow.cli.output import console, echo_json, flow_run_dict, json_option, state_text
from daskflow.cli.run import param_option, parse_pairs

__all__ = ["deployments_group"]

#: How often ``--watch`` reads the run's state.
_WATCH_POLL = 0.25


def _store(ctx: click.Context) -> Any:
    from daskflow.api.deployments import sql_store

    return sql_store(ctx.find_root().meta.get("daskflow.store"))


@click.group("deployments")
def deployments_group() -> None:
    """Deployments: flows served by `daskflow serve --name` / `flow.serve(name=...)`."""


def _served(heartbeat: float | None) -> bool:
    from daskflow.serving.requests import is_served

    return is_served(heartbeat)


def _deployment_dict(row: Any) -> dict[str, Any]:
    return {
        "name": row.full_name,
        "flow_name": row.flow_name,
        "deployment": row.name,
        "schedule": row.schedule,
        "served": _served(row.heartbeat),
        "heartbeat": _iso(row.heartbeat),
        "queued": row.queued,
        "parameters": row.parameters,
        "parameter_schema": row.parameter_schema,
        "entrypoint": row.entrypoint,
        "created": _iso(row.created),
        "updated": _iso(row.updated),
    }


def _iso(when: float | None) -> str | None:
    return None if when is None else datetime.fromtimestamp(when, UTC).isoformat()


@deployments_group.command("list")
@json_option
@click.pass_context
def list_command(ctx: click.Context, as_json: bool) -> None:
    """List the deployments: schedule, whether a process serves them, requests waiting."""
    from daskflow.store.deployments import list_deployments

    found = list_deployments(_store(ctx))
    if as_json:
        echo_json([_deployment_dict(row) for row in found])
        return
    out = console()
    if not found:
        out.print("No deployments recorded (flow.serve(name=...) or daskflow serve records one).")
        return
    from rich.table import Table

    table = Table(title=f"Deployments ({len(found)})", title_justify="left")
    for column in ("NAME", "SCHEDULE", "SERVED", "QUEUED", "PARAMETERS"):
        table.add_column(column, overflow="fold")
    for row in found:
        served = "yes" if _served(row.heartbeat) else "[red]no process serves it[/red]"
        table.add_row(
            row.full_name,
            row.schedule or "on request only",
            served,
            str(row.queued),
            ", ".join(f"{k}={v!r}" for k, v in row.parameters.items()) or "-",
        )
    out.print(table)


@deployments_group.command("run")
@click.argument("name", metavar="FLOW/NAME")
@param_option
@click.option("--watch", is_flag=True, help="Follow the run to its end; exit 0 completed, 1 not.")
@json_option
@click.pass_context
def run_command(
    ctx: click.Context, name: str, params: tuple[str, ...], watch: bool, as_json: bool
) -> None:
    """Ask deployment FLOW/NAME for a run; print its id (a serving process starts it).

    The parameters are checked against the deployment's parameter schema
    before anything is recorded (exit 2 for an unknown or bad one). The run
    is recorded SCHEDULED at once; a process serving the deployment starts it
    within about a second (or when its limit leaves room).

    \b
    Examples:
      daskflow deployments run etl/nightly -p day=2026-01-02
      daskflow deployments run etl/nightly --watch
    """
    from daskflow.api.deployments import find_deployment, request_deployment_run, text_parameters
    from daskflow.history import get_run

    store = _store(ctx)
    deployment = find_deployment(store, name)
    schema = deployment.parameter_schema
    keys = ", ".join(schema.get("properties", {}))
    parameters = parse_pairs(params, deployment.full_name, text_parameters(schema), keys)
    flow_run_id = request_deployment_run(deployment.full_name, parameters, store=store)
    run = get_run(flow_run_id, store=store)
    if not watch:
        if as_json:
            echo_json(flow_run_dict(run))
        else:
            click.echo(f"Flow run {run.name!r} of {deployment.full_name} requested: id {run.id}")
            if not _served(deployment.heartbeat):
                click.echo(
                    f"No process serves {deployment.full_name} now: the run waits (SCHEDULED) "
                    "until one does.",
                    err=True,
                )
        return
    requested = f"Flow run {run.name!r} of {deployment.full_name} requested: id {run.id}"
    click.echo(requested, err=as_json)
    _watch(ctx, store, run, as_json)


def _watch(ctx: click.Context, store: Any, run: Any, as_json: bool) -> None:
    """Follow ``run``: print each state it enters; Ctrl-C asks it to cancel (twice: leave)."""
    import signal

    from daskflow.history import format_duration
    from daskflow.signal_handlers import handling

    pressed = [0]

    def on_sigint(number: int, frame: Any) -> None:
        pressed[0] += 1
        if pressed[0] > 1:
            raise KeyboardInterrupt
        store.request_cancel(run.id, time.time())
        click.echo("Cancelling the flow run (Ctrl-C again to stop watching)", err=True)

    out = console() if not as_json else None
    seen = 0
    try:
        with handling({signal.SIGINT: on_sigint}):
            while True:
                run = run.refresh()
                changes = store.list_transitions(run.id)
                for change in changes[seen:]:
                    if out is not None:
                        out.print(f"  {_local(change.timestamp)} ", state_text(change.state))
                seen = len(changes)
                if run.state.is_final():
                    break
                time.sleep(_WATCH_POLL)
    except KeyboardInterrupt:
        click.echo(f"Stopped watching flow run {run.id}; it goes on.", err=True)
        ctx.exit(INTERRUPTED)
    if as_json:
        echo_json(flow_run_dict(run))
    elif run.state.type.value == "COMPLETED":
        click.echo(f"Flow run {run.name!r} COMPLETED in {format_duration(run.duration)}")
    else:
        if run.state.traceback:
            click.echo(run.state.traceback.rstrip(), err=True)
        click.echo(f"Flow run {run.name!r} {run.state.type.value}: {run.state.message}", err=True)
    if run.state.type.value != "COMPLETED":
        ctx.exit(INTERRUPTED if pressed[0] else 1)


def _local(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).astimezone().strftime("%H:%M:%S")

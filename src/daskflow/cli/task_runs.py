"""``daskflow task-runs list``: recorded task runs of any flow run, bare ones included.

A task called outside any flow runs as a task run of no flow run
(:mod:`daskflow.api.bare`); it belongs to no flow run that ``daskflow runs``
could show, so this is where it is listed.
"""

from __future__ import annotations

import click

from daskflow import history
from daskflow.cli.output import (
    console,
    echo_json,
    json_option,
    limit_option,
    local_time,
    state_option,
    state_text,
    task_run_dict,
)
from daskflow.history import format_duration

__all__ = ["task_runs_group"]


@click.group("task-runs")
def task_runs_group() -> None:
    """Look at recorded task runs, also those of tasks called outside any flow."""


@task_runs_group.command("list")
@click.option("--task", "task_name", metavar="NAME", help="Only runs of this task.")
@state_option
@limit_option
@json_option
@click.pass_context
def list_command(
    ctx: click.Context, task_name: str | None, state: str | None, limit: int, as_json: bool
) -> None:
    """List task runs, newest first (FLOW RUN "-": called outside any flow)."""
    found = history.task_runs(
        task=task_name, state=state, limit=limit, store=ctx.meta.get("daskflow.store")
    )
    if as_json:
        echo_json([task_run_dict(run) for run in found])
        return
    out = console()
    if not found:
        out.print("No task runs recorded" + (f" for task {task_name!r}" if task_name else "") + ".")
        return
    from rich.table import Table

    table = Table(title=f"Task runs (newest {len(found)})", title_justify="left")
    for column in ("ID", "FLOW RUN", "TASK", "NAME", "STATE", "STARTED", "DURATION"):
        if column in ("TASK", "NAME"):
            table.add_column(column, overflow="fold")
        else:
            table.add_column(column, no_wrap=True)
    for run in found:
        table.add_row(
            run.id[:8],
            run.flow_run_id[:8] if run.flow_run_id else "-",
            run.task_name,
            run.name,
            state_text(run.state.type),
            local_time(run.start_time),
            format_duration(run.duration),
        )
    out.print(table)

"""``daskflow runs list | show | logs | retry | cancel``: the run history in a terminal.

Reads go through :mod:`daskflow.history` and never load a whole big run:
``show`` asks the store for per-task-name counts (one grouped query) and at
most ``--limit`` task rows, so a flow run of a million task runs shows as fast
as one of ten. Each command prints rich tables, or JSON with ``--json``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from daskflow import history
from daskflow.cli.output import (
    console,
    echo_json,
    flow_run_dict,
    json_option,
    limit_option,
    local_time,
    log_dict,
    state_option,
    state_text,
    task_run_dict,
)
from daskflow.history import format_duration
from daskflow.states import StateType

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["runs_group"]

_LEVEL_STYLES = {"DEBUG": "dim", "WARNING": "yellow", "ERROR": "red", "CRITICAL": "bold red"}


def _store(ctx: click.Context) -> str | None:
    """The ``--store`` URL given to ``daskflow`` (None: the configured store)."""
    return ctx.meta.get("daskflow.store")


@click.group("runs")
def runs_group() -> None:
    """Look at recorded flow runs: list them, show one, read its logs, retry or cancel one."""


@runs_group.command("list")
@click.option("--flow", "flow_name", metavar="NAME", help="Only runs of this flow.")
@state_option
@limit_option
@json_option
@click.pass_context
def list_command(
    ctx: click.Context, flow_name: str | None, state: str | None, limit: int, as_json: bool
) -> None:
    """List flow runs, newest first."""
    found = history.runs(flow=flow_name, state=state, limit=limit, store=_store(ctx))
    if as_json:
        echo_json([flow_run_dict(run) for run in found])
        return
    out = console()
    if not found:
        out.print("No flow runs recorded" + (f" for flow {flow_name!r}" if flow_name else "") + ".")
        return
    from rich.table import Table

    table = Table(title=f"Flow runs (newest {len(found)})", title_justify="left")
    # id, state, start and duration keep their width; long flow and run names fold
    fixed = {"ID": 8, "STATE": max(len(r.state.type.value) for r in found), "STARTED": 19}
    for column in ("ID", "FLOW", "NAME", "STATE", "STARTED", "DURATION"):
        if column in ("FLOW", "NAME"):
            table.add_column(column, overflow="fold")
        else:
            table.add_column(column, no_wrap=True, min_width=fixed.get(column, len(column)))
    for run in found:
        table.add_row(
            run.id[:8],
            run.flow_name,
            run.name,
            state_text(run.state.type),
            _started(run),
            format_duration(run.duration),
        )
    out.print(table)


@runs_group.command("show")
@click.argument("run_id", metavar="ID")
@click.option(
    "--limit",
    default=50,
    show_default=True,
    type=click.IntRange(min=0),
    help="At most N task runs listed (bigger runs also show counts per task).",
)
@json_option
@click.pass_context
def show_command(ctx: click.Context, run_id: str, limit: int, as_json: bool) -> None:
    """Show one flow run (ID or a unique prefix of it) and its task runs."""
    run = history.get_run(run_id, store=_store(ctx))
    counts = run.task_counts()
    total = sum(sum(by_state.values()) for by_state in counts.values())
    task_runs = run.read_task_runs(limit=limit) if limit else []
    if as_json:
        echo_json(
            {
                **flow_run_dict(run),
                "task_runs_total": total,
                "task_counts": {
                    name: {state.value: n for state, n in by_state.items()}
                    for name, by_state in counts.items()
                },
                "task_runs": [task_run_dict(t) for t in task_runs],
            }
        )
        return
    out = console()
    out.print(_flow_run_fields(run))
    if run.state.traceback:
        out.print(run.state.traceback.rstrip(), style="dim", markup=False)
    if total > len(task_runs):
        out.print(_counts_table(counts, total))
    if task_runs:
        out.print(_task_runs_table(task_runs, total))
    else:
        out.print(f"{total:,} task runs" + (" (--limit N to list them)" if total else "."))


def _flow_run_fields(run: history.FlowRun) -> Table:
    from rich.table import Table

    state = run.state
    rows: list[tuple[str, Any]] = [
        ("id", run.id),
        ("flow", run.flow_name),
        ("state", state_text(state.type)),
        ("message", state.message or "-"),
        ("parameters", _compact(run.parameters)),
        ("started", local_time(run.start_time)),
        ("ended", local_time(run.end_time)),
        ("duration", format_duration(run.duration)),
        ("parent", run.parent_id or "-"),
    ]
    if run.resumed_from:  # `runs retry` made it: the run it retried
        rows.append(("resumed from", run.resumed_from))
    error = f"{state.error_type}: {state.error_message}" if state.error_type else ""
    if error and error != state.message:
        rows.append(("error", error))
    fields = Table.grid(padding=(0, 2))
    fields.title = f"Flow run {run.name}"
    fields.title_justify = "left"
    fields.title_style = "bold"
    fields.add_column(style="bold")
    fields.add_column()
    for key, value in rows:
        fields.add_row(key, value)
    return fields


def _counts_table(counts: dict[str, dict[StateType, int]], total: int) -> Table:
    from rich.table import Table

    seen = [t for t in StateType if any(t in c for c in counts.values())]
    table = Table(title=f"Task runs per task ({total:,})", title_justify="left")
    for column in ("TASK", "TOTAL", *(t.value for t in seen)):
        table.add_column(column, justify="left" if column == "TASK" else "right")
    for name, by_state in sorted(counts.items()):
        table.add_row(
            name, f"{sum(by_state.values()):,}", *(f"{by_state.get(t, 0):,}" for t in seen)
        )
    return table


def _task_runs_table(task_runs: list[history.TaskRun], total: int) -> Table:
    from rich.table import Table

    title = (
        f"Task runs ({total:,})"
        if total == len(task_runs)
        else f"First {len(task_runs):,} of {total:,} task runs (--limit N for more)"
    )
    table = Table(title=title, title_justify="left")
    failed = any(t.error_type for t in task_runs)
    nested = any(t.parent_task_run_id for t in task_runs)  # runs that tasks started
    names = {t.id: t.name for t in task_runs} if nested else {}
    columns = ("NAME", *(["PARENT"] * nested), "STATE", "ATTEMPTS", "DURATION", "WORKER")
    for column in (*columns, *(["ERROR"] * failed)):
        table.add_column(column, no_wrap=column != "ERROR")
    for t in task_runs:
        error = [f"{t.error_type}: {t.error_message}" if t.error_type else ""] if failed else []
        parent = t.parent_task_run_id
        table.add_row(
            t.name,
            *([names.get(parent, parent[:8]) if parent else "-"] if nested else []),
            state_text(t.state.type),
            str(t.attempts),
            format_duration(t.duration),
            t.worker or "-",
            *error,
        )
    return table


@runs_group.command("retry")
@click.argument("run_id", metavar="ID")
@click.option(
    "--flow-file",
    "flow_file",
    metavar="FILE.py",
    help="The file that defines the flow (default: the one recorded with the run).",
)
@click.option(
    "--cluster",
    metavar="SPEC",
    help='Where to run: "sync", "local" or a scheduler address (default: the flow\'s own).',
)
@json_option
@click.pass_context
def retry_command(
    ctx: click.Context, run_id: str, flow_file: str | None, cluster: str | None, as_json: bool
) -> None:
    """Resume failed flow run ID: run its flow again with the same parameters.

    Task runs that completed with a stored result (persist_result, or a
    cache) are not run again: they end CACHED with that result. The new run
    is a flow run of its own, linked to ID (its "resumed from"). Exit code 0
    when it completes, 1 when it fails, 2 for an unknown ID or a run that
    cannot be resumed (it completed, or is still running).

    \b
    Examples:
      daskflow runs retry 3f2a9c81
      daskflow runs retry 3f2a9c81 --flow-file pipelines/etl.py --cluster sync
    """
    from daskflow.cli.run import load_flow, run_and_report

    old = history.get_run(run_id, store=_store(ctx))
    path = flow_file or (old.entrypoint.rsplit(":", 1)[0] if old.entrypoint else None)
    if path is None:
        raise click.UsageError(
            f"flow run {old.id} did not record the file of its flow: give --flow-file FILE.py"
        )
    flow = load_flow(f"{path}:{old.flow_name}")
    if cluster:
        flow = flow.with_options(cluster=cluster)
    completed = [t for t in old.read_task_runs() if t.state.is_completed()]
    if completed and not any(t.result_location for t in completed):
        click.echo(
            f"Note: none of the {len(completed)} task runs that completed in {old.id[:8]} "
            "stored its result, so they all run again. Set persist_result=True on the flow "
            "(or cache tasks) to reuse them next time.",
            err=True,
        )
    run_and_report(flow, lambda: flow.resume(old.id, return_state=True), as_json)


@runs_group.command("cancel")
@click.argument("run_id", metavar="ID")
@click.option(
    "--wait",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="How long to wait for the run to end (0: ask and return).",
)
@json_option
@click.pass_context
def cancel_command(ctx: click.Context, run_id: str, wait: float, as_json: bool) -> None:
    """Cancel flow run ID, wherever it runs (this machine, a serve process, a cluster).

    The request goes through the run store; the flow's process picks it up
    within about a second, cancels the run's task runs on the cluster, and
    the run ends CANCELLED (its on_cancellation hooks run). A SCHEDULED run
    of `daskflow serve` is never started; serve keeps serving. Exit code 0
    when the run ended CANCELLED, 1 when it ended otherwise or is still going
    after --wait, 2 for an unknown ID or a run that has already ended.

    \b
    Examples:
      daskflow runs cancel 3f2a9c81
      daskflow runs cancel 3f2a9c81 --wait 0
    """
    run = history.get_run(run_id, store=_store(ctx))
    after = run.cancel(wait=wait or None)
    if as_json:
        echo_json(flow_run_dict(after))
    else:
        out = console()
        label = f"flow run {after.name} ({after.id[:8]})"
        if after.state.is_final():
            out.print(f"{label} ", state_text(after.state.type), end="\n")
        elif wait:
            out.print(
                f"Asked to cancel {label}; it is still {after.state.type.value} after "
                f"{wait:g} s: its process has not acted on the request (busy, or gone: "
                "the store marks it CRASHED once its heartbeat stops)."
            )
        else:
            out.print(f"Asked to cancel {label}.")
    if wait and after.state.type is not StateType.CANCELLED:
        ctx.exit(1)


@runs_group.command("logs")
@click.argument("run_id", metavar="ID")
@click.option("--task", "task_name", metavar="NAME", help="Only records of this task's runs.")
@click.option("--limit", type=click.IntRange(min=1), help="At most N records (the oldest first).")
@click.option("--tail", type=click.IntRange(min=1), metavar="N", help="Only the last N records.")
@json_option
@click.pass_context
def logs_command(
    ctx: click.Context,
    run_id: str,
    task_name: str | None,
    limit: int | None,
    tail: int | None,
    as_json: bool,
) -> None:
    """Print the log records of a flow run (ID or a unique prefix) and its task runs."""
    if limit is not None and tail is not None:
        raise click.UsageError("give --limit or --tail, not both")
    run = history.get_run(run_id, store=_store(ctx))
    if tail is not None:
        records = run.read_logs(task=task_name, limit=tail, newest=True)
    else:
        records = run.read_logs(task=task_name, limit=limit)
    if as_json:
        echo_json([log_dict(r) for r in records])
        return
    from rich.text import Text

    out = console()
    for record in records:
        level = record.level_name
        line = Text(record.timestamp.astimezone().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3])
        line.append(f" {level:<8}", style=_LEVEL_STYLES.get(level, ""))
        line.append(f" {record.task_name or 'flow'} | ", style="dim")
        line.append(record.message)
        out.print(line, soft_wrap=True)
    if not records:
        which = f" of task {task_name!r}" if task_name else ""
        out.print(f"No log records{which} for flow run {run.name} ({run.id[:8]}).")


def _started(run: history.FlowRun) -> str:
    """When the run started, or for a scheduled run not started yet, its slot."""
    if run.start_time is None and run.scheduled_time is not None:
        return f"at {local_time(run.scheduled_time)}"
    return local_time(run.start_time)


def _compact(value: Any) -> str:
    text = json.dumps(value, default=repr)
    return text if len(text) <= 300 else text[:299] + "…"

"""``daskflow artifacts list | show``: the artifacts runs created, in a terminal.

``list`` shows the latest artifact of each key, newest first (``--key K``:
that key's history); ``show KEY`` the content of a key's latest artifact
(``--all``: of each, newest first): markdown rendered, tables as tables, a
link with its text, progress as a bar. Both read one query through
:func:`daskflow.history.read_artifacts` and print JSON with ``--json``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from daskflow import history
from daskflow.cli.output import artifact_dict, console, echo_json, json_option, local_time
from daskflow.errors import ArtifactError
from daskflow.history.display import artifact_summary, cell_text, safe_url, table_columns

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

__all__ = ["artifacts_group"]


def _store(ctx: click.Context) -> str | None:
    """The ``--store`` URL given to ``daskflow`` (None: the configured store)."""
    return ctx.meta.get("daskflow.store")


@click.group("artifacts")
def artifacts_group() -> None:
    """Look at the artifacts runs created: the latest of each key, or a key's history."""


@artifacts_group.command("list")
@click.option("--key", metavar="KEY", help="Only this key: its history, newest first.")
@click.option(
    "--limit",
    default=25,
    show_default=True,
    type=click.IntRange(min=1),
    help="At most N artifacts.",
)
@json_option
@click.pass_context
def list_command(ctx: click.Context, key: str | None, limit: int, as_json: bool) -> None:
    """List the latest artifact of each key, newest first.

    Artifacts without a key are shown with their flow run only (run.artifacts
    in Python, and the notebook card).

    \b
    Examples:
      daskflow artifacts list
      daskflow artifacts list --key sales-report --json
    """
    found = history.read_artifacts(key, latest=key is None, limit=limit, store=_store(ctx))
    if as_json:
        echo_json([artifact_dict(a) for a in found])
        return
    out = console()
    if not found:
        out.print("No artifacts recorded" + (f" with key {key!r}" if key else "") + ".")
        return
    from rich.table import Table
    from rich.text import Text

    title = f"Artifacts of key {key} (newest {len(found)})" if key else "Artifacts (latest per key)"
    table = Table(title=title, title_justify="left")
    # type and time keep their width; key, run and content fold (80 columns hold them)
    fixed = {"TYPE": 8, "CREATED": 19}
    for column in ("KEY", "TYPE", "CREATED", "RUN", "CONTENT"):
        if column in fixed:
            table.add_column(column, no_wrap=True, min_width=fixed[column])
        else:
            table.add_column(column, overflow="fold", min_width=len(column))
    for a in found:
        run = a.flow_run_id[:8] if a.flow_run_id else "-"
        content = Text(artifact_summary(a))
        if a.description:
            content.append(f"\n{a.description}", style="dim")
        table.add_row(
            a.key or "-",
            a.type,
            local_time(a.created),
            f"{run} {a.task_name}" if a.task_name else run,
            content,
        )
    out.print(table)


@artifacts_group.command("show")
@click.argument("key", metavar="KEY")
@click.option(
    "--all", "show_all", is_flag=True, help="Every artifact of KEY (its history), newest first."
)
@json_option
@click.pass_context
def show_command(ctx: click.Context, key: str, show_all: bool, as_json: bool) -> None:
    """Show the latest artifact of KEY: markdown, a table, a link or a progress bar.

    Exit code 2 when no artifact has the key.

    \b
    Examples:
      daskflow artifacts show sales-report
      daskflow artifacts show load-progress --all
    """
    found = history.read_artifacts(key, limit=None if show_all else 1, store=_store(ctx))
    if not found:
        from daskflow.store.observer import configured_url

        where = safe_url(_store(ctx) or configured_url())
        raise ArtifactError(
            f"key {key!r}",
            f"none recorded in the run store {where} (daskflow artifacts list shows the keys)",
        )
    if as_json:
        echo_json([artifact_dict(a) for a in found] if show_all else artifact_dict(found[0]))
        return
    out = console()
    for i, artifact in enumerate(found):
        if i:
            out.print()
        _print(out, artifact)


def _print(out: Console, artifact: history.Artifact) -> None:
    from rich.text import Text

    head = Text(artifact.key or "(no key)", style="bold")
    head.append(f" · {artifact.type}")
    run = artifact.flow_run_id[:8] if artifact.flow_run_id else None
    by = f"flow run {run}" if run else "no run"
    if artifact.task_name:
        by += f", task {artifact.task_name}"
    head.append(f" · {local_time(artifact.created)} · {by}", style="dim")
    out.print(head)
    if artifact.description:
        out.print(artifact.description, style="italic", markup=False)
    out.print(_content(artifact))


def _content(artifact: history.Artifact) -> RenderableType:
    from rich.text import Text

    data, kind = artifact.data, artifact.type
    if kind == "markdown" and isinstance(data, str):
        from rich.markdown import Markdown

        return Markdown(data)
    if kind == "table":
        from rich.table import Table

        names, rows = table_columns(data)
        table = Table()
        for name in names:
            table.add_column(name, overflow="fold")
        for row in rows:
            table.add_row(*(cell_text(value) for value in row))
        return table
    if kind == "link" and isinstance(data, dict):
        link = str(data.get("link") or "")
        text = data.get("link_text")
        shown = Text(str(text), style=f"link {link}") if text else Text(link, style=f"link {link}")
        if text:
            shown.append(f"  {link}", style="dim")
        return shown
    if kind == "progress" and isinstance(data, int | float):
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        grid = Table.grid(padding=(0, 1))
        grid.add_row(ProgressBar(total=100.0, completed=float(data), width=40), f"{data:g}%")
        return grid
    return Text(artifact_summary(artifact))

"""The ``daskflow`` command line::

    daskflow [--store URL] run FILE.py[:FLOW] [-p KEY=VALUE ...] [--cluster SPEC] [--json]
    daskflow [--store URL] runs list [--flow NAME] [--state S] [--limit N] [--json]
    daskflow [--store URL] runs show ID [--limit N] [--json]
    daskflow [--store URL] runs logs ID [--task NAME] [--limit N | --tail N] [--json]
    daskflow [--store URL] runs retry ID [--flow-file FILE.py] [--cluster SPEC] [--json]
    daskflow [--store URL] runs cancel ID [--wait SECONDS] [--json]
    daskflow [--store URL] artifacts list [--key KEY] [--limit N] [--json]
    daskflow [--store URL] artifacts show KEY [--all] [--json]
    daskflow [--store URL] serve FILE.py[:FLOW] (--cron EXPR | --interval D) [-p KEY=VALUE ...]
    daskflow [--store URL] serve FILE.py[:FLOW] --name NAME [--cron EXPR | --interval D]
    daskflow [--store URL] deployments list [--json]
    daskflow [--store URL] deployments run FLOW/NAME [-p KEY=VALUE ...] [--watch] [--json]
    daskflow [--store URL] dashboard [--port P] [--host H]
    daskflow [--store URL] task-runs list [--task NAME] [--state S] [--limit N] [--json]

Built with click; one module per command family (:mod:`.run`, :mod:`.runs`,
:mod:`.artifacts` ...) and one for what they print (:mod:`.output`: rich tables
for people, ``--json`` for scripts). ``--store`` overrides the configured run store (config
``daskflow.store``, env ``DASKFLOW_STORE``) for reads *and* for the runs that
``daskflow run`` records.

Exit codes: 0 success; 1 the flow run failed (or another error, printed);
2 bad usage or bad input — an unknown file, flow, parameter, run id or artifact key.
daskflow's own errors reach here as exceptions and become click's errors in
one place (:class:`_Group`), with their message and nothing else.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import click

from daskflow._version import __version__
from daskflow.cli.artifacts import artifacts_group
from daskflow.cli.dashboard import dashboard_command
from daskflow.cli.deployments import deployments_group
from daskflow.cli.run import run_command
from daskflow.cli.runs import runs_group
from daskflow.cli.serve import serve_command
from daskflow.cli.task_runs import task_runs_group
from daskflow.errors import DaskflowError

__all__ = ["cli", "main"]


class _Group(click.Group):
    """Turns daskflow's errors into click's: bad input exits 2, anything else 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DaskflowError as exc:
            if isinstance(exc, ValueError | TypeError | LookupError):
                raise click.UsageError(str(exc)) from exc
            raise click.ClickException(str(exc)) from exc


def _use_store(ctx: click.Context, param: click.Parameter, url: str | None) -> str | None:
    if url:
        import dask.config

        ctx.meta["daskflow.store"] = url
        # this process (reads, and the runs `daskflow run` records) and its children
        dask.config.set({"daskflow.store": url})
        os.environ["DASKFLOW_STORE"] = url
    return url


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="daskflow", message="%(prog)s %(version)s")
@click.option(
    "--store",
    metavar="URL",
    callback=_use_store,
    expose_value=False,
    is_eager=True,
    help="The run store: a SQLite file path or a SQLAlchemy URL "
    "(default: config daskflow.store, env DASKFLOW_STORE).",
)
def cli() -> None:
    """daskflow: workflows in plain Python, run on Dask."""


cli.add_command(run_command)
cli.add_command(runs_group)
cli.add_command(dashboard_command)
cli.add_command(serve_command)
cli.add_command(task_runs_group)
cli.add_command(deployments_group)
cli.add_command(artifacts_group)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``daskflow`` console script (exits with the command's code).

    Examples
    --------
    >>> main(["--version"])  # doctest: +SKIP
    daskflow 0.1.0
    """
    cli.main(args=list(argv) if argv is not None else None, prog_name="daskflow")

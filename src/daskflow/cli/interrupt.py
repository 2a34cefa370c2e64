"""Ctrl-C during ``daskflow run``: the run is cancelled, recorded CANCELLED, exit 130.

Prefect users press Ctrl-C to stop a run they started from the terminal and
expect it to end *cancelled*, not crashed, and the command to exit 130 like
any interrupted program. While the flow runs, :func:`ctrl_c_cancels` makes
the first Ctrl-C request the run's cancellation (as ``daskflow runs cancel``
does from another terminal: running task runs are cancelled, the flow
function stops at its next wait, hooks run, the run is recorded CANCELLED).
A second Ctrl-C, or one before the run began, interrupts at once
(``KeyboardInterrupt``: the engine records the run CRASHED, the process
exits 130). The worker processes, which see the same Ctrl-C, ignore it
(:mod:`daskflow.engine.quiet`).
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from typing import Any

import click

from daskflow.engine.cancellation import cancel_flow_run
from daskflow.signal_handlers import handling

__all__ = ["INTERRUPTED", "Interrupts", "ctrl_c_cancels"]

#: The exit code of an interrupted command (128 + SIGINT), as shells report it.
INTERRUPTED = 130


class Interrupts:
    """How many times Ctrl-C was pressed while the run went."""

    def __init__(self) -> None:
        self.count = 0


@contextlib.contextmanager
def ctrl_c_cancels(flow_run_id: Callable[[], str | None]) -> Iterator[Interrupts]:
    """Ctrl-C cancels the run ``flow_run_id()`` names (main thread only).

    Parameters
    ----------
    flow_run_id
        The id of the run once it exists, else None.
    """
    seen = Interrupts()

    def on_sigint(number: int, frame: Any) -> None:
        seen.count += 1
        run_id = flow_run_id() if seen.count == 1 else None
        if run_id is not None and cancel_flow_run(run_id, "interrupted (Ctrl-C)"):
            click.echo("Cancelling the flow run (Ctrl-C again to stop at once)", err=True)
            return
        raise KeyboardInterrupt

    with handling({signal.SIGINT: on_sigint}):
        yield seen

"""The terminal view: live ``rich`` lines while a flow runs, a table at the end.

While the flow runs, a :class:`rich.live.Live` display redraws a few times a
second from :meth:`RunTracker.snapshot`: a headline (flow, state, elapsed
time) and one line per task name — a bar and ``done / failed / running of
total`` (and the retries, when there were some). The live lines are
transient: when the run ends they are replaced by one summary table printed
once (task name, completed, failed, retries when any, total; the flow's
state and duration in the title), which stays in the scroll-back. The run's
log lines print through the same console meanwhile, above the live lines
(:mod:`daskflow.progress.console_logs`).

On a console that is not a terminal (output piped to a file, a CI log) rich
draws no live frames, so only the summary is written.

The two render functions are pure — snapshot in, renderable out — so tests
render them into a ``Console(file=io.StringIO())`` without any timing.
"""

from __future__ import annotations

import logging

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from daskflow.history.display import STATE_COLORS, format_duration
from daskflow.progress.tracker import ProgressSnapshot, RunTracker

__all__ = ["TerminalView", "render_live", "render_summary"]

logger = logging.getLogger("daskflow.progress")


def _headline(snapshot: ProgressSnapshot, separator: str = ": ") -> Text:
    """E.g. ``etl: RUNNING 2.4s``, the state in its colour (as ``daskflow runs`` shows it)."""
    state, subflows = snapshot.state_type, snapshot.subflows_note
    return Text.assemble(
        (snapshot.flow_name, "bold"),
        separator,
        (state.value, STATE_COLORS[state]),
        f" {format_duration(snapshot.duration)}{subflows}",
    )


def render_live(snapshot: ProgressSnapshot) -> RenderableType:
    """The live frame: the headline and one bar line per task name.

    Parameters
    ----------
    snapshot
        What to draw.

    Returns
    -------
    rich.console.RenderableType
        A group of the headline and a grid of lines.
    """
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True, style="bold")
    grid.add_column(width=30)
    grid.add_column(no_wrap=True)
    for task in snapshot.tasks:
        bar = ProgressBar(
            total=max(task.total, 1),
            completed=task.finished,
            width=30,
            complete_style="red" if task.failed else "green",
            finished_style="red" if task.failed else "green",
        )
        grid.add_row(task.name, bar, task.describe())
    if not snapshot.tasks:
        grid.add_row(Text("no task runs yet", style="dim"), "", "")
    return Group(_headline(snapshot), grid)


def render_summary(snapshot: ProgressSnapshot) -> RenderableType:
    """The end-of-run table: completed, failed and total task runs per task name.

    Columns for retries, cancelled and unfinished runs appear only when
    there are some, and one with each task name's first error when a run
    failed.

    Parameters
    ----------
    snapshot
        The final snapshot (after ``bus.flush()``).

    Returns
    -------
    rich.table.Table
        Its title holds the flow name, state and duration; the footer the totals.
    """
    totals = snapshot.totals
    show_cancelled = totals.cancelled > 0
    show_unfinished = totals.pending + totals.running > 0
    table = Table(
        title=_headline(snapshot, " "), show_footer=len(snapshot.tasks) > 1, title_justify="left"
    )
    table.add_column("task", footer="all tasks")
    table.add_column("completed", justify="right", footer=str(totals.completed))
    table.add_column("failed", justify="right", footer=str(totals.failed))
    show_retries = totals.retried > 0
    if show_retries:
        table.add_column("retries", justify="right", footer=str(totals.retried))
    if show_cancelled:
        table.add_column("cancelled", justify="right", footer=str(totals.cancelled))
    if show_unfinished:  # a run interrupted (Ctrl-C), or events lost: a flow waits for its runs
        table.add_column("unfinished", justify="right", footer=str(totals.pending + totals.running))
    table.add_column("total", justify="right", footer=str(totals.total))
    show_errors = totals.failed > 0
    if show_errors:
        table.add_column("first error", max_width=60, overflow="ellipsis", no_wrap=True)
    for task in snapshot.tasks:
        row: list[RenderableType] = [
            task.name,
            str(task.completed),
            Text(str(task.failed), "red" if task.failed else ""),
        ]
        if show_retries:
            row.append(Text(str(task.retried), "yellow" if task.retried else ""))
        if show_cancelled:
            row.append(str(task.cancelled))
        if show_unfinished:
            row.append(str(task.pending + task.running))
        row.append(str(task.total))
        if show_errors:
            row.append(Text(task.first_error or "", "red"))
        table.add_row(*row)
    return table


class TerminalView:
    """Shows a :class:`RunTracker` on a ``rich`` console while a flow runs.

    Parameters
    ----------
    tracker
        The model to draw.
    console
        Where to draw; a new ``Console()`` on standard output by default.
    refresh_per_second
        How often the live lines are redrawn.

    Examples
    --------
    >>> view = TerminalView(tracker, console=Console(file=io.StringIO()))  # doctest: +SKIP
    >>> view.start()  # doctest: +SKIP
    >>> # ... the flow runs; then, after bus.flush():
    >>> view.stop()  # doctest: +SKIP
    """

    def __init__(
        self, tracker: RunTracker, console: Console | None = None, refresh_per_second: float = 4
    ) -> None:
        self.tracker = tracker
        self.console = console if console is not None else Console()
        self._live = Live(
            console=self.console,
            refresh_per_second=refresh_per_second,
            transient=True,
            auto_refresh=self.console.is_terminal,  # elsewhere rich draws no frames anyway
            get_renderable=self._frame,
        )
        self._frame_failed = False

    def _frame(self) -> RenderableType:
        # called on rich's refresh thread: a failure must not end that thread
        try:
            return render_live(self.tracker.snapshot())
        except Exception:
            if not self._frame_failed:
                self._frame_failed = True
                logger.exception("daskflow: could not draw the progress lines")
            return Text("")

    def start(self) -> None:
        """Begin the live display."""
        self._live.start()

    def stop(self) -> None:
        """End the live display and print the summary of the tracker's last snapshot."""
        try:
            self._live.stop()
        finally:
            self.console.print(render_summary(self.tracker.snapshot()))

"""The notebook view: a live HTML display in the running cell, then a summary.

In Jupyter the cell that calls a flow gets one output, created with
``IPython.display.display(..., display_id=True)`` and redrawn in place with
the handle's ``update`` — plain display messages, so it works in JupyterLab,
classic Notebook, VS Code and ``nbclient`` without ``ipywidgets``. A daemon
thread redraws it from :meth:`RunTracker.snapshot` twice a second; when the
run ends the same output becomes the summary table, which is what stays in
the saved notebook.

:func:`render_live` and :func:`render_summary` are pure (snapshot in, HTML
string out); :class:`NotebookView` only schedules them.
"""

from __future__ import annotations

import html
import logging
import threading
from collections.abc import Callable
from typing import Any

from daskflow.history.display import STATE_COLORS, format_duration
from daskflow.progress.tracker import ProgressSnapshot, RunTracker

__all__ = ["NotebookView", "render_live", "render_summary"]

logger = logging.getLogger("daskflow.progress")

_CELL = 'style="text-align:{align};padding:1px 8px"'


def _td(value: object, align: str = "right") -> str:
    return f"<td {_CELL.format(align=align)}>{html.escape(str(value))}</td>"


def _th(value: str, align: str = "right") -> str:
    return f"<th {_CELL.format(align=align)}>{html.escape(value)}</th>"


def _headline(snapshot: ProgressSnapshot) -> str:
    """E.g. ``etl: RUNNING 2.4s``: the plain-text form of the title."""
    state, subflows = snapshot.state_type, snapshot.subflows_note
    return f"{snapshot.flow_name}: {state.value} {format_duration(snapshot.duration)}{subflows}"


def _title(snapshot: ProgressSnapshot) -> str:
    state, subflows = snapshot.state_type, snapshot.subflows_note
    return (
        f"<b>{html.escape(snapshot.flow_name)}</b> "
        f'<span style="color:{STATE_COLORS[state]}">{state.value}</span> '
        f"{format_duration(snapshot.duration)}{subflows}"
    )


def render_live(snapshot: ProgressSnapshot) -> str:
    """The live frame as HTML: the headline and one ``<progress>`` line per task name.

    Parameters
    ----------
    snapshot
        What to draw.

    Returns
    -------
    str
        An HTML fragment.
    """
    rows = []
    for task in snapshot.tasks:
        bar = (
            f'<progress value="{task.finished}" max="{max(task.total, 1)}" '
            'style="width:16em"></progress>'
        )
        rows.append(
            f"<tr>{_td(task.name, 'left')}<td>{bar}</td>{_td(task.describe(), 'left')}</tr>"
        )
    if not rows:
        rows.append(f"<tr>{_td('no task runs yet', 'left')}</tr>")
    return (
        f'<div class="daskflow-progress"><div>{_title(snapshot)}</div>'
        f"<table>{''.join(rows)}</table></div>"
    )


def render_summary(snapshot: ProgressSnapshot) -> str:
    """The end-of-run table as HTML: completed, failed and total per task name.

    A column of retries appears when a run was retried, and one of first
    errors when a run failed.

    Parameters
    ----------
    snapshot
        The final snapshot (after ``bus.flush()``).

    Returns
    -------
    str
        An HTML ``<table>`` whose caption holds the flow's state and duration.
    """
    totals = snapshot.totals
    show_errors = totals.failed > 0
    show_retries = totals.retried > 0
    head = [_th("task", "left"), _th("completed"), _th("failed")]
    if show_retries:
        head.append(_th("retries"))
    head.append(_th("total"))
    if show_errors:
        head.append(_th("first error", "left"))
    body = []
    for task in (*snapshot.tasks, totals) if len(snapshot.tasks) > 1 else snapshot.tasks:
        cells = [_td(task.name, "left"), _td(task.completed), _td(task.failed)]
        if show_retries:
            cells.append(_td(task.retried))
        cells.append(_td(task.total))
        if show_errors:
            cells.append(_td(task.first_error or "", "left"))
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (
        '<table class="daskflow-summary">'
        f'<caption style="text-align:left">{_title(snapshot)}</caption>'
        f"<thead><tr>{''.join(head)}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _ipython_display() -> Callable[..., Any]:
    from IPython.display import display

    return display


class _Html:
    """What ``display`` shows: HTML for notebooks, the headline for plain text."""

    def __init__(self, html_text: str, plain: str) -> None:
        self._html = html_text
        self._plain = plain

    def _repr_html_(self) -> str:
        return self._html

    def __repr__(self) -> str:
        return self._plain


class NotebookView:
    """Shows a :class:`RunTracker` in the output of the running notebook cell.

    Parameters
    ----------
    tracker
        The model to draw.
    display
        ``IPython.display.display`` by default; it is called once with
        ``display_id=True`` and must return a handle with ``update(obj)``.
    interval
        Seconds between two redraws.

    Examples
    --------
    >>> view = NotebookView(tracker)  # doctest: +SKIP
    >>> view.start()  # doctest: +SKIP
    >>> # ... the flow runs; then, after bus.flush():
    >>> view.stop()  # doctest: +SKIP
    """

    def __init__(
        self,
        tracker: RunTracker,
        display: Callable[..., Any] | None = None,
        interval: float = 0.5,
    ) -> None:
        self.tracker = tracker
        self._display = display
        self._interval = interval
        self._handle: Any = None
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def _frame(self) -> _Html:
        snapshot = self.tracker.snapshot()
        return _Html(render_live(snapshot), _headline(snapshot))

    def start(self) -> None:
        """Show the first frame and start redrawing it."""
        self._handle = (self._display or _ipython_display())(self._frame(), display_id=True)
        self._thread = threading.Thread(target=self._redraw, name="daskflow-progress", daemon=True)
        self._thread.start()

    def _redraw(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self._handle.update(self._frame())
            except Exception:
                logger.exception("daskflow: could not redraw the progress display")
                return

    def stop(self) -> None:
        """Stop redrawing and turn the output into the summary of the last snapshot."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()
        if self._handle is not None:
            snapshot = self.tracker.snapshot()
            self._handle.update(_Html(render_summary(snapshot), _headline(snapshot)))

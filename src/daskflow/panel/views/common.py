"""What the panel's views share: state colours, progress buckets, small helpers."""

from __future__ import annotations

import datetime
import html
from typing import Any

from bokeh.models import ColumnDataSource, CustomJS
from bokeh.models.widgets import Div

from daskflow.states import StateType

__all__ = [
    "COLORS",
    "FAILED",
    "PROGRESS",
    "PROGRESS_COLORS",
    "bucket",
    "duration",
    "empty_state",
    "escape",
    "live_table",
    "millis",
    "sentence",
    "set_data",
    "when",
]

#: A colour per state, the same in every view.
COLORS = {
    StateType.COMPLETED: "#2ca02c",
    StateType.CACHED: "#98df8a",
    StateType.FAILED: "#d62728",
    StateType.TIMED_OUT: "#ff7f0e",
    StateType.CRASHED: "#8c564b",
    StateType.UPSTREAM_FAILED: "#f7b6d2",
    StateType.CANCELLED: "#7f7f7f",
    StateType.RUNNING: "#1f77b4",
    StateType.RETRYING: "#9467bd",
    StateType.PENDING: "#c7c7c7",
    StateType.SCHEDULED: "#dbdb8d",
}
#: The buckets a progress bar shows, and their colours.
PROGRESS = ("completed", "cached", "failed", "running", "pending")
PROGRESS_COLORS = ("#2ca02c", "#98df8a", "#d62728", "#1f77b4", "#c7c7c7")
#: States counted as failed in progress bars and the runs table.
FAILED = (StateType.FAILED, StateType.TIMED_OUT, StateType.CRASHED, StateType.UPSTREAM_FAILED)
_BUCKETS = {
    StateType.COMPLETED: "completed",
    StateType.CACHED: "cached",
    StateType.RUNNING: "running",
    StateType.RETRYING: "running",
    **dict.fromkeys(FAILED, "failed"),
}


def bucket(state: StateType) -> str:
    """The progress bucket of a state (SCHEDULED, PENDING and CANCELLED: pending)."""
    return _BUCKETS.get(state, "pending")


def set_data(source: ColumnDataSource, data: dict[str, list[Any]]) -> None:
    """Replace ``source.data`` only if it changed: an idle page sends nothing to the browser."""
    if dict(source.data) != data:
        source.data = data


def when(seconds: float | None) -> datetime.datetime | None:
    """A store timestamp as an aware UTC datetime (what DataTable formatters take)."""
    return None if seconds is None else datetime.datetime.fromtimestamp(seconds, datetime.UTC)


def millis(seconds: float) -> float:
    """A store timestamp on Bokeh's datetime axes (milliseconds since the epoch)."""
    return seconds * 1000.0


def duration(start: float | None, end: float | None) -> str:
    """``"1.25 s"``, or empty while the run has not ended."""
    return "" if start is None or end is None else f"{end - start:.2f} s"


def escape(text: str) -> str:
    """Text for a Div's HTML (names, messages and tracebacks are user data)."""
    return html.escape(text, quote=False)


#: How a sentence that stands in for an empty plot or table looks.
SENTENCE_STYLE: dict[str, str | None] = {
    "color": "#555",
    "font-size": "14px",
    "padding": "12px 4px",
}


def sentence(text: str = "") -> Div:
    """A Div for one sentence standing in for an empty plot or table."""
    return Div(text=text, styles=SENTENCE_STYLE, sizing_mode="stretch_width")


def empty_state(note: Div, shown: Any, text: str) -> None:
    """Show ``note`` saying ``text`` instead of ``shown``; an empty ``text`` shows ``shown``.

    Properties are set only when they change, so an idle page sends nothing.
    """
    text = escape(text)
    if note.text != text:
        note.text = text
    if note.visible != bool(text):
        note.visible = bool(text)
    if shown.visible != (not text):
        shown.visible = not text


def live_table(table: Any) -> Any:
    """Make a ``DataTable`` draw again whenever its source's data is replaced; returns it.

    BokehJS redraws a table's rows when its ``CDSView`` reports new indices,
    which it does not when the number of rows stays the same: a run turning
    from RUNNING to COMPLETED, or one run's 200 log records replaced by
    another's, left the old rows on screen until a reload. The view's change
    signal, emitted in the browser on every new ``data``, redraws them.
    """
    redraw = CustomJS(args={"view": table.view}, code="view.change.emit()")
    table.source.js_on_change("data", redraw)
    return table

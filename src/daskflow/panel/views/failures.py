"""Failures of the selected flow run, with tracebacks, and its log records."""

from __future__ import annotations

from typing import Any

from bokeh.layouts import column
from bokeh.models import ColumnDataSource
from bokeh.models.widgets import DataTable, DateFormatter, Div, TableColumn

from daskflow.panel.model import PanelModel

from .common import escape, set_data, when

__all__ = ["FailuresView"]

_LEVELS = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}
_FAILURES = ("name", "state", "worker", "attempts", "error_type", "error_message", "traceback")


class FailuresView:
    """Failed task runs (error type, message; the selected one's traceback) and logs.

    Attributes
    ----------
    source : ColumnDataSource
        One row per failed task run (FAILED, TIMED_OUT, CRASHED).
    logs_source : ColumnDataSource
        The selected run's log records, oldest first.
    traceback : Div
        The traceback of the failure selected in the table (the first by default).
    """

    def __init__(self, model: PanelModel) -> None:
        self.model = model
        self.source = ColumnDataSource({k: [] for k in _FAILURES})
        self.logs_source = ColumnDataSource({"time": [], "level": [], "task": [], "message": []})
        failures = DataTable(
            source=self.source,
            columns=[
                TableColumn(field="name", title="task run"),
                TableColumn(field="state", title="state"),
                TableColumn(field="worker", title="worker"),
                TableColumn(field="attempts", title="attempts"),
                TableColumn(field="error_type", title="error"),
                TableColumn(field="error_message", title="message"),
            ],
            height=180,
            sizing_mode="stretch_width",
        )
        logs = DataTable(
            source=self.logs_source,
            columns=[
                TableColumn(field="time", title="time (UTC)", formatter=DateFormatter(format="%T")),
                TableColumn(field="level", title="level"),
                TableColumn(field="task", title="task"),
                TableColumn(field="message", title="message"),
            ],
            height=200,
            sizing_mode="stretch_width",
        )
        self.traceback = Div(text="", sizing_mode="stretch_width")
        self.source.selected.on_change("indices", lambda attr, old, new: self._show(new))
        self.root = column(
            Div(text="<h3>Failures</h3>"),
            failures,
            self.traceback,
            Div(text="<h3>Logs</h3>"),
            logs,
            sizing_mode="stretch_width",
        )

    def _show(self, indices: list[int]) -> None:
        tracebacks = self.source.data["traceback"]
        index = indices[0] if indices else 0
        text = tracebacks[index] if index < len(tracebacks) else ""
        html = f"<pre style='font-size: 11px'>{escape(text)}</pre>" if text else ""
        if self.traceback.text != html:
            self.traceback.text = html

    def update(self) -> None:
        rows = self.model.failures
        set_data(
            self.source,
            {
                "name": [r.name for r in rows],
                "state": [r.state.value for r in rows],
                "worker": [r.worker or "" for r in rows],
                "attempts": [r.attempts for r in rows],
                "error_type": [r.error_type or "" for r in rows],
                "error_message": [r.error_message or "" for r in rows],
                "traceback": [r.traceback or "" for r in rows],
            },
        )
        self._show(list(self.source.selected.indices))
        logs = self.model.logs
        data: dict[str, list[Any]] = {
            "time": [when(r.timestamp) for r in logs],
            "level": [_LEVELS.get(r.level, str(r.level)) for r in logs],
            "task": [r.task_name or "(flow)" for r in logs],
            "message": [r.message for r in logs],
        }
        set_data(self.logs_source, data)

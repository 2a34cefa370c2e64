"""The log records of the selected flow run, long lines wrapped.

Records come from the flow function and from its task runs on every worker
(``get_run_logger()``, ``log_prints``, retries), the newest
:data:`~daskflow.panel.model.LOGS_SHOWN` of them, oldest first. They are
drawn as an HTML table rather than a ``DataTable``, whose rows are one line
high: a long message or a multi-line record (a traceback logged by a task)
wraps and shows whole.
"""

from __future__ import annotations

from typing import Any

from bokeh.layouts import column
from bokeh.models import ColumnDataSource
from bokeh.models.widgets import Div

from daskflow.panel.model import PanelModel

from .common import empty_state, escape, sentence, set_data, when

__all__ = ["LEVELS", "LogsView"]

LEVELS = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}
_LEVEL_COLORS = {"WARNING": "#b35900", "ERROR": "#d62728", "CRITICAL": "#d62728"}
_TABLE = (
    "border-collapse:collapse;width:100%;font-size:12px;"
    "font-family:ui-monospace,Menlo,Consolas,monospace"
)
_CELL = "padding:2px 8px;vertical-align:top;border-bottom:1px solid #eee"
_WRAP = "white-space:pre-wrap;overflow-wrap:anywhere"


class LogsView:
    """The selected run's log records: time, level, task and the message, wrapped.

    Attributes
    ----------
    source : ColumnDataSource
        The records shown, oldest first (what the table is drawn from).
    table : Div
        The records as an HTML table, scrolling past 600 px.
    """

    def __init__(self, model: PanelModel) -> None:
        self.model = model
        self.source = ColumnDataSource({"time": [], "level": [], "task": [], "message": []})
        self.table = Div(
            text="",
            sizing_mode="stretch_width",
            styles={"max-height": "600px", "overflow-y": "auto"},
        )
        self.note = sentence()
        self.root = column(self.note, self.table, sizing_mode="stretch_width")

    def update(self) -> None:
        logs = self.model.logs
        data: dict[str, list[Any]] = {
            "time": [when(r.timestamp) for r in logs],
            "level": [LEVELS.get(r.level, str(r.level)) for r in logs],
            "task": [r.task_name or "(flow)" for r in logs],
            "message": [r.message for r in logs],
        }
        set_data(self.source, data)
        text = _table(data) if logs else ""
        if self.table.text != text:
            self.table.text = text
        none = self.model.run is not None and not logs
        empty = "This flow run has no log records yet." if none else ""
        empty_state(self.note, self.table, empty)


def _table(data: dict[str, list[Any]]) -> str:
    rows = []
    for time, level, task, message in zip(*data.values(), strict=True):
        color = _LEVEL_COLORS.get(level)
        style = f"{_CELL};color:{color}" if color else _CELL
        rows.append(
            f"<tr><td style='{_CELL};white-space:nowrap'>{time:%H:%M:%S}</td>"
            f"<td style='{style}'>{level}</td>"
            f"<td style='{_CELL};white-space:nowrap'>{escape(task)}</td>"
            f"<td style='{_CELL};{_WRAP};width:100%'>{escape(message)}</td></tr>"
        )
    head = (
        f"<tr style='text-align:left;color:#555;white-space:nowrap'>"
        f"<th style='{_CELL}'>time (UTC)</th>"
        f"<th style='{_CELL}'>level</th><th style='{_CELL}'>task</th>"
        f"<th style='{_CELL}'>message</th></tr>"
    )
    return f"<table style='{_TABLE}'>{head}{''.join(rows)}</table>"

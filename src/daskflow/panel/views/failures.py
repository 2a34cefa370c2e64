"""Failures of the selected flow run: its failed task runs and their tracebacks."""

from __future__ import annotations

from bokeh.layouts import column
from bokeh.models import ColumnDataSource
from bokeh.models.widgets import DataTable, Div, TableColumn

from daskflow.panel.model import PanelModel

from .common import empty_state, live_table, sentence, set_data
from .traceback import to_html

__all__ = ["FailuresView"]

_FAILURES = ("name", "state", "worker", "attempts", "error_type", "error_message", "traceback")


class FailuresView:
    """Failed task runs (state, worker, error type and message) and the selected one's traceback.

    A run without failures shows one sentence instead of an empty table. A
    flow run that failed outside its task runs (its own function raised)
    shows the flow run's error and traceback.

    Attributes
    ----------
    source : ColumnDataSource
        One row per failed task run (FAILED, TIMED_OUT, CRASHED).
    traceback : Div
        The traceback of the failure selected in the table (the first by
        default), as :func:`~daskflow.panel.views.traceback.to_html` shows it.
    """

    def __init__(self, model: PanelModel) -> None:
        self.model = model
        self.source = ColumnDataSource({k: [] for k in _FAILURES})
        self.table = DataTable(
            source=self.source,
            columns=[
                TableColumn(field="name", title="task run", width=220),
                TableColumn(field="state", title="state", width=90),
                TableColumn(field="worker", title="worker", width=170),
                TableColumn(field="attempts", title="attempts", width=70),
                TableColumn(field="error_type", title="error", width=130),
                TableColumn(field="error_message", title="message", width=380),
            ],
            height=150,
            index_position=None,
            sizing_mode="stretch_width",
        )
        live_table(self.table)  # redraw rows whose values change
        self.traceback = Div(text="", sizing_mode="stretch_width")
        self.heading = Div(text="<h3 style='margin:8px 0 0 0'>Failures</h3>")
        self.note = sentence()
        self.flow_error = Div(text="", sizing_mode="stretch_width", visible=False)
        self.source.selected.on_change("indices", lambda attr, old, new: self._show(new))
        self.root = column(
            self.heading,
            self.note,
            self.flow_error,
            self.table,
            self.traceback,
            sizing_mode="stretch_width",
        )

    def _show(self, indices: list[int]) -> None:
        tracebacks = self.source.data["traceback"]
        index = indices[0] if indices else 0
        text = tracebacks[index] if index < len(tracebacks) else ""
        html = to_html(text) if text else ""
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
        height = 36 + 25 * min(max(len(rows), 1), 5)  # no blank rows; scrolls past five
        if self.table.height != height:
            self.table.height = height
        run = self.model.run
        flow_error = ""
        if run is not None and not rows and run.traceback:  # the flow function itself raised
            flow_error = to_html(run.traceback)
        if self.flow_error.text != flow_error:
            self.flow_error.text = flow_error
            self.flow_error.visible = bool(flow_error)
        if run is None or rows or flow_error:
            empty = ""
        elif run.state.value in ("FAILED", "CRASHED", "TIMED_OUT"):
            message = f": {run.state_message}" if run.state_message else ""
            empty = f"No task run failed; the flow run ended {run.state.value}{message}"
        else:
            empty = "No task run failed."
        empty_state(self.note, self.table, empty)
        if self.traceback.visible != bool(rows):
            self.traceback.visible = bool(rows)

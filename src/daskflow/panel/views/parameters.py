"""The parameters the selected flow run was called with, from its flow-run record."""

from __future__ import annotations

import json
from typing import Any

from bokeh.layouts import column
from bokeh.models import ColumnDataSource
from bokeh.models.widgets import Div

from daskflow.panel.model import PanelModel

from .common import empty_state, escape, sentence, set_data

__all__ = ["ParametersView"]

_CELL = "padding:3px 10px;vertical-align:top;border-bottom:1px solid #eee"
_VALUE = (
    "font-family:ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap;"
    "overflow-wrap:anywhere;width:100%"
)


class ParametersView:
    """A row per parameter: its name and its value as JSON (as the store keeps it).

    Attributes
    ----------
    source : ColumnDataSource
        ``name`` and ``value`` (JSON text) per parameter, in the order given.
    table : Div
        The same as an HTML table, long values wrapped.
    """

    def __init__(self, model: PanelModel) -> None:
        self.model = model
        self.source = ColumnDataSource({"name": [], "value": []})
        self.table = Div(text="", sizing_mode="stretch_width")
        self.note = sentence()
        self.root = column(self.note, self.table, sizing_mode="stretch_width")

    def update(self) -> None:
        run = self.model.run
        parameters: dict[str, Any] = dict(run.parameters or {}) if run is not None else {}
        data: dict[str, list[Any]] = {
            "name": list(parameters),
            "value": [_json(v) for v in parameters.values()],
        }
        set_data(self.source, data)
        rows = "".join(
            f"<tr><td style='{_CELL};font-weight:bold'>{escape(name)}</td>"
            f"<td style='{_CELL};{_VALUE}'>{escape(value)}</td></tr>"
            for name, value in zip(data["name"], data["value"], strict=True)
        )
        text = f"<table style='border-collapse:collapse;width:100%'>{rows}</table>" if rows else ""
        if self.table.text != text:
            self.table.text = text
        empty = "This flow run was called without parameters." if run and not rows else ""
        empty_state(self.note, self.table, empty)


def _json(value: Any) -> str:
    try:
        return json.dumps(value, indent=None, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        return repr(value)

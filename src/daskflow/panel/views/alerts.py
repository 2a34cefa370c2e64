"""The alerts banner: flow runs that failed since the page was opened."""

from __future__ import annotations

from bokeh.models import ColumnDataSource
from bokeh.models.widgets import Div

from daskflow.panel.model import PanelModel

from .common import escape, set_data

__all__ = ["AlertsView"]

_SHOWN = 10
_STYLE = "background:#d62728;color:white;padding:6px 12px;border-radius:4px"


class AlertsView:
    """A red banner naming the flow runs that failed, crashed or timed out since the page opened.

    Hidden while there is nothing to say; runs that failed before the page
    opened are history (the runs table), not alerts.
    """

    def __init__(self, model: PanelModel) -> None:
        self.model = model
        self.source = ColumnDataSource(
            {"id": [], "name": [], "flow": [], "state": [], "message": []}
        )
        self.root = Div(text="", visible=False, sizing_mode="stretch_width")

    def update(self) -> None:
        alerts = self.model.alerts
        set_data(
            self.source,
            {
                "id": [r.id for r in alerts],
                "name": [r.name for r in alerts],
                "flow": [r.flow_name for r in alerts],
                "state": [r.state.value for r in alerts],
                "message": [r.state_message for r in alerts],
            },
        )
        text = ""
        if alerts:
            items = "".join(
                f"<li><b>{escape(r.name)}</b> ({escape(r.flow_name)}) {r.state.value}: "
                f"{escape(r.state_message)}</li>"
                for r in alerts[:_SHOWN]
            )
            more = f"<li>and {len(alerts) - _SHOWN} more</li>" if len(alerts) > _SHOWN else ""
            text = (
                f"<div style='{_STYLE}'>{len(alerts)} flow run(s) failed since this page "
                f"opened<ul style='margin:4px 0'>{items}{more}</ul></div>"
            )
        if self.root.text != text:
            self.root.text = text
            self.root.visible = bool(text)

"""The alerts banner: flow runs that failed since the user last looked.

"Last looked" is the run store's seen mark (:mod:`daskflow.panel.seen`), so
failures recorded while no page was open raise an alert too. Each alert
links to its run's page (``?run=ID``); *Mark as seen* moves the mark to now
and hides the banner, in this page and the next ones opened on the store.
"""

from __future__ import annotations

from bokeh.layouts import row
from bokeh.models import ColumnDataSource
from bokeh.models.widgets import Button, Div

from daskflow.panel.model import PanelModel

from .common import escape, set_data

__all__ = ["AlertsView"]

_SHOWN = 10
#: Characters of a run's state message the banner shows (the run's page has it whole).
_MESSAGE = 160
_STYLE: dict[str, str | None] = {
    "background": "#d62728",
    "color": "white",
    "padding": "6px 12px",
    "border-radius": "4px",
    "font-size": "14px",
}
_LINK = "color:white;text-decoration:underline;font-weight:bold"


class AlertsView:
    """A red banner naming, with a link each, the flow runs that failed, crashed or timed out.

    Hidden while there is nothing to say.

    Attributes
    ----------
    source : ColumnDataSource
        One row per alert: id, name, flow, state, message.
    banner : Div
        The banner's text.
    dismiss : Button
        *Mark as seen*: the model's :meth:`~daskflow.panel.model.PanelModel.dismiss_alerts`.
    """

    def __init__(self, model: PanelModel) -> None:
        self.model = model
        self.source = ColumnDataSource(
            {"id": [], "name": [], "flow": [], "state": [], "message": []}
        )
        self.banner = Div(text="", sizing_mode="stretch_width", styles=_STYLE)
        self.dismiss = Button(label="Mark as seen", button_type="danger", width=140, align="start")
        self.dismiss.on_click(self._dismiss)
        self.root = row(self.banner, self.dismiss, visible=False, sizing_mode="stretch_width")

    def _dismiss(self) -> None:
        self.model.dismiss_alerts()
        self.update()

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
                f"<li><a style='{_LINK}' href='?run={escape(r.id)}'>{escape(r.name)}</a> "
                f"({escape(r.flow_name)}) {r.state.value}: {escape(_short(r.state_message))}</li>"
                for r in alerts[:_SHOWN]
            )
            more = f"<li>and {len(alerts) - _SHOWN} more</li>" if len(alerts) > _SHOWN else ""
            runs = "flow run" if len(alerts) == 1 else "flow runs"
            text = (
                f"<b>{len(alerts)} {runs} failed since you last looked</b>"
                f"<ul style='margin:4px 0'>{items}{more}</ul>"
            )
        if self.banner.text != text:
            self.banner.text = text
        if self.root.visible != bool(text):
            self.root.visible = bool(text)


def _short(message: str) -> str:
    """The first :data:`_MESSAGE` characters of a state message, and "…" if it goes on."""
    return message if len(message) <= _MESSAGE else message[: _MESSAGE - 1].rstrip() + "…"

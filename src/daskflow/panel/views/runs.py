"""The runs table: recent flow runs, filters by flow and state, and run selection."""

from __future__ import annotations

from typing import Any

from bokeh.layouts import column, row
from bokeh.models import ColumnDataSource
from bokeh.models.widgets import Button, DataTable, DateFormatter, Div, Select, TableColumn

from daskflow.panel.model import PanelModel
from daskflow.states import StateType

from .common import FAILED, duration, live_table, set_data, when

__all__ = ["RunsView"]

_COLUMNS = ("id", "short_id", "name", "flow", "state", "start", "duration", "tasks")
#: Id prefix shown (as the CLI shows ids), and the least width of each column (px).
_SHORT = 8
#: The table's height (px) once it lists about eight runs; it scrolls past that.
_HEIGHT = 260
_DONE = (StateType.COMPLETED, StateType.CACHED)


class RunsView:
    """Recent flow runs (state, start, duration, task counts); filters; selection.

    Selecting a row shows that run in the detail views (and stops following
    the newest run until "newest" is pressed); the selected run's row stays
    highlighted as new runs push it down.
    """

    def __init__(self, model: PanelModel) -> None:
        self.model = model
        self.source = ColumnDataSource({k: [] for k in _COLUMNS})
        # widths are in proportion (the table fills the window): at 1,280 px and
        # up every column shows a 32-character flow name, its run's name (41), a
        # date and its header whole
        columns = [
            TableColumn(field="short_id", title="id", width=80),
            TableColumn(field="name", title="run", width=300),
            TableColumn(field="flow", title="flow", width=230),
            TableColumn(field="state", title="state", width=100),
            TableColumn(
                field="start",
                title="start (UTC)",
                width=160,
                formatter=DateFormatter(format="%F %T"),
            ),
            TableColumn(field="duration", title="duration", width=80),
            TableColumn(field="tasks", title="task runs: done / failed / all", width=210),
        ]
        self.table = DataTable(
            source=self.source,
            columns=columns,
            height=_HEIGHT,
            index_position=None,
            sizing_mode="stretch_width",
        )
        live_table(self.table)  # redraw rows whose values change
        flows: list[str | None] = ["all"]
        self.flow_select = Select(title="flow", value="all", options=flows, width=180)
        states: list[str | None] = ["all", *(t.value for t in StateType)]
        self.state_select = Select(title="state", value="all", options=states, width=180)
        self.newest = Button(label="follow the newest run", width=180, align="end")
        self.flow_select.on_change("value", self._on_filter)
        self.state_select.on_change("value", self._on_filter)
        self.newest.on_click(lambda: self.model.select(None))
        self.source.selected.on_change("indices", self._on_select)
        self.root = column(
            row(
                Div(text="<h3 style='margin:0'>Flow runs</h3>", width=160, align="end"),
                self.flow_select,
                self.state_select,
                self.newest,
            ),
            self.table,
            sizing_mode="stretch_width",
        )

    def _on_filter(self, attr: str, old: Any, new: Any) -> None:
        flow, state = self.flow_select.value, self.state_select.value
        self.model.flow_filter = None if flow == "all" else flow
        self.model.state_filter = None if state == "all" else StateType(state)

    def _on_select(self, attr: str, old: Any, new: list[int]) -> None:
        ids = self.source.data["id"]
        if new and new[0] < len(ids) and ids[new[0]] != self.model.selected:
            self.model.select(ids[new[0]])  # a click; update() keeping the row is ignored

    def update(self) -> None:
        flows: list[str | None] = ["all", *self.model.flow_names]
        if list(self.flow_select.options) != flows:
            self.flow_select.options = flows
        data: dict[str, list[Any]] = {k: [] for k in _COLUMNS}
        for run in self.model.flow_runs:
            counts = self.model.run_counts.get(run.id, {})
            total = sum(sum(by_state.values()) for by_state in counts.values())
            done = sum(n for c in counts.values() for s, n in c.items() if s in _DONE)
            failed = sum(n for c in counts.values() for s, n in c.items() if s in FAILED)
            data["id"].append(run.id)
            data["short_id"].append(run.id[:_SHORT])
            data["name"].append(run.name)
            data["flow"].append(run.flow_name)
            data["state"].append(run.state.value)
            # a scheduled run not started yet shows its slot
            data["start"].append(when(run.start_time or run.scheduled_time or run.created))
            data["duration"].append(duration(run.start_time, run.end_time))
            data["tasks"].append(f"{done:,} / {failed:,} / {total:,}")
        set_data(self.source, data)
        height = min(_HEIGHT, 36 + 25 * max(len(data["id"]), 1))  # no blank rows under a few runs
        if self.table.height != height:
            self.table.height = height
        selected = self.model.selected
        rows = [data["id"].index(selected)] if selected in data["id"] else []
        if list(self.source.selected.indices) != rows:
            self.source.selected.indices = rows

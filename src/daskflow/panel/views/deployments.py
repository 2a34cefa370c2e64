"""The deployments page: what is served, whether a process serves it, and a form to run it.

A table of the store's deployments (``flow.serve(name=...)``, ``daskflow
serve --name``): each with its flow, schedule, next run, whether a live
process serves it, its requests waiting and its last run. Below it, the
selected deployment's default parameters and last runs, each linked to its
run page, and a *Run* button that opens the run form
(:mod:`daskflow.panel.views.run_form`).
"""

from __future__ import annotations

import json
from typing import Any

from bokeh.layouts import column, row
from bokeh.models import ColumnDataSource
from bokeh.models.widgets import Button, DataTable, DateFormatter, Div, TableColumn

from daskflow.panel.deployments import Deployments, DeploymentStatus
from daskflow.store.base import FlowRunRow

from .common import COLORS, duration, empty_state, escape, live_table, sentence, set_data, when
from .run_form import RunForm

__all__ = ["DeploymentsView"]

_COLUMNS = ("name", "flow_name", "schedule", "next_run", "served", "queued", "last_run")
_CELL = "padding:2px 10px;text-align:left;vertical-align:top;border-bottom:1px solid #eee"
_UNSUPPORTED = (
    "Deployments live in a SQLite file or database run store, not in this one ({where}): "
    "serve a flow with a name on such a store and it shows here."
)
_NONE = (
    "No deployment is recorded in this run store: flow.serve(name=...) or "
    "daskflow serve FILE.py:FLOW --name NAME records one."
)


class DeploymentsView:
    """The deployments table, the selected deployment's last runs, and its run form.

    Parameters
    ----------
    deployments
        The panel's reader of the store's deployments.

    Attributes
    ----------
    source : ColumnDataSource
        One row per deployment: ``name`` (``flow/deployment``), ``flow_name``,
        ``schedule``, ``next_run``, ``served``, ``queued``, ``last_run``.
    selected : str or None
        The deployment whose details and form show.
    form : RunForm
        The run form (:meth:`open_form`).
    """

    def __init__(self, deployments: Deployments) -> None:
        self.deployments = deployments
        self.selected: str | None = None
        self.source = ColumnDataSource({k: [] for k in _COLUMNS})
        columns = [
            TableColumn(field="name", title="deployment", width=240),
            TableColumn(field="schedule", title="schedule", width=200),
            TableColumn(
                field="next_run",
                title="next run (UTC)",
                width=160,
                formatter=DateFormatter(format="%F %T", nan_format="-"),
            ),
            TableColumn(field="served", title="served", width=160),
            TableColumn(field="queued", title="requests waiting", width=120),
            TableColumn(field="last_run", title="last run", width=240),
        ]
        self.table = live_table(
            DataTable(
                source=self.source,
                columns=columns,
                index_position=None,
                height=120,
                sizing_mode="stretch_width",
            )
        )
        self.source.selected.on_change("indices", self._on_select)
        self.run = Button(label="Run…", button_type="primary", width=240, disabled=True)
        self.run.on_click(self.open_form)
        self.details = Div(text="", sizing_mode="stretch_width")
        self.form = RunForm(deployments.store, on_requested=deployments.expire)
        self.note = sentence()
        heading = Div(text="<h3 style='margin:4px 0'>Deployments</h3>", width=200)
        self.body = column(
            self.table,
            row(self.run, align="start"),
            self.form.root,
            self.details,
            sizing_mode="stretch_width",
        )
        self.root = column(heading, self.note, self.body, sizing_mode="stretch_width")

    def _on_select(self, attr: str, old: Any, new: list[int]) -> None:
        names = self.source.data["name"]
        if new and new[0] < len(names) and names[new[0]] != self.selected:
            self.selected = names[new[0]]
            self.form.close()
            self.update()

    def open_form(self) -> None:
        """Open the run form of the selected deployment."""
        status = self.deployments.find(self.selected) if self.selected else None
        if status is not None:
            self.form.open(status)

    def update(self) -> None:
        shown = self.deployments.shown
        data: dict[str, list[Any]] = {k: [] for k in _COLUMNS}
        for status in shown:
            deployment = status.deployment
            data["name"].append(deployment.full_name)
            data["flow_name"].append(deployment.flow_name)
            data["schedule"].append(deployment.schedule or "on request only")
            data["next_run"].append(when(status.next_run))
            data["served"].append("yes" if status.served else "no process serves it")
            data["queued"].append(deployment.queued)
            data["last_run"].append(_last(status.runs))
        set_data(self.source, data)
        names = data["name"]
        if self.selected not in names:
            self.selected = names[0] if names else None
        indices = [names.index(self.selected)] if self.selected in names else []
        if list(self.source.selected.indices) != indices:
            self.source.selected.indices = indices
        height = min(300, 36 + 25 * max(len(names), 1))
        if self.table.height != height:
            self.table.height = height
        label = f"Run {self.selected}…" if self.selected else "Run…"
        if self.run.label != label:
            self.run.label = label
        if self.run.disabled != (self.selected is None):
            self.run.disabled = self.selected is None
        chosen = self.deployments.find(self.selected) if self.selected else None
        text = _details(chosen) if chosen is not None else ""
        if self.details.text != text:
            self.details.text = text
        if not self.deployments.supported:
            where = str(getattr(self.deployments.store, "url", "memory"))
            empty = _UNSUPPORTED.format(where=where)
        else:
            empty = "" if shown else _NONE
        empty_state(self.note, self.body, empty)


def _last(runs: tuple[FlowRunRow, ...]) -> str:
    if not runs:
        return "-"
    last = runs[0]
    at = when(last.start_time or last.scheduled_time or last.created)
    return f"{last.state.value} at {at:%F %T}" if at is not None else last.state.value


def _details(status: DeploymentStatus) -> str:
    """The deployment's defaults and last runs, each run linked to its page."""
    deployment = status.deployment
    defaults = ", ".join(
        f"{escape(k)}={escape(json.dumps(v, default=repr))}"
        for k, v in deployment.parameters.items()
    )
    where = escape(deployment.entrypoint or "(not recorded)")
    lines = [
        f"<b>{escape(deployment.full_name)}</b>"
        f"<span style='color:#555'> · flow {escape(deployment.flow_name)} · "
        f"entrypoint {where}</span>",
        f"<div>defaults: {defaults or 'none'}</div>",
    ]
    if status.runs:
        rows = "".join(
            f"<tr><td style='{_CELL}'><a href='?run={escape(r.id)}'>{escape(r.id[:8])}</a></td>"
            f"<td style='{_CELL}'>{escape(r.name)}</td>"
            f"<td style='{_CELL};color:{COLORS[r.state]};font-weight:bold'>{r.state.value}</td>"
            f"<td style='{_CELL}'>{_time(r)}</td>"
            f"<td style='{_CELL}'>{duration(r.start_time, r.end_time)}</td></tr>"
            for r in status.runs
        )
        head = "".join(
            f"<th style='{_CELL};color:#555'>{t}</th>"
            for t in ("id", "run", "state", "start (UTC)", "duration")
        )
        lines.append(
            "<div style='margin-top:6px'>last runs</div>"
            f"<table style='border-collapse:collapse'><tr>{head}</tr>{rows}</table>"
        )
    else:
        lines.append("<div style='color:#555'>No run of it is recorded yet.</div>")
    return "".join(lines)


def _time(run: FlowRunRow) -> str:
    at = when(run.start_time or run.scheduled_time or run.created)
    return f"{at:%F %T}" if at is not None else ""

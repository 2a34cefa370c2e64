"""The panel's deployments page and run form on a real SQLite store, as Bokeh models.

Deployments are recorded as a serving process records them
(``record_deployment``, the parameter schema built from the flows of
``tests/resources/deployed.py``); their runs are real run requests
(``request_deployment_run``, what ``daskflow deployments run`` makes) and
schedule slots written as ``serve`` writes them. The form is driven as a
browser drives it: widget values set, then the button's click event. The
browser test (``test_panel_browser.py``) runs the same form against a real
``daskflow serve`` process.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from bokeh.document import Document
from bokeh.events import ButtonClick
from bokeh.models.widgets import Checkbox, NumericInput, Select, TextAreaInput, TextInput

import daskflow
from daskflow.api.deployments import parameter_schema, request_deployment_run
from daskflow.observers.events import FlowRunCreated, StateChanged
from daskflow.panel.deployments import Deployments
from daskflow.panel.views import DeploymentsView
from daskflow.states import State, StateType
from daskflow.store import MemoryStore
from daskflow.store.deployments import list_deployments, record_deployment
from daskflow.store.sql import SQLStore
from tests.resources.deployed import greet, nightly_report

S = StateType
DEPLOYED = Path(__file__).parent / "resources" / "deployed.py"


def record(store: SQLStore, flow, name: str, schedule: str | None, heartbeat: float, **defaults):
    record_deployment(
        store,
        flow_name=flow.name,
        name=name,
        entrypoint=f"{DEPLOYED}:{flow.name}",
        parameters=defaults,
        parameter_schema=parameter_schema(flow.fn),
        schedule=schedule,
        server="test",
        now=heartbeat,
    )


def page(store) -> SimpleNamespace:
    deployments = Deployments(store)
    view = DeploymentsView(deployments)
    Document().add_root(view.root)

    def refresh() -> None:
        deployments.refresh(force=True)
        view.update()

    refresh()
    return SimpleNamespace(deployments=deployments, view=view, refresh=refresh)


def click(button) -> None:
    button._trigger_event(ButtonClick(button))


@pytest.fixture
def store(tmp_path: Path):
    opened = SQLStore(str(tmp_path / "runs.db"))
    now = time.time()
    record(opened, greet, "hourly", "every 1 hour", now, times=2)  # served now
    record(opened, nightly_report, "nightly", None, now - 3600, day="2026-01-02")  # not served
    yield opened
    opened.close()


def test_each_deployment_shows_its_schedule_next_run_serving_and_last_runs(store):
    t = time.time()
    requested = request_deployment_run("greet/hourly", {"name": "ann"}, store=store)
    slot = "5" * 32  # serve's next slot of the schedule, recorded SCHEDULED
    store.write(
        [
            FlowRunCreated(slot, "greet", "greet-slot", {}, None, t, scheduled_time=t + 600),
            StateChanged(slot, None, State(S.SCHEDULED, t)),
        ]
    )
    shown = page(store)
    data = shown.view.source.data
    assert data["name"] == ["greet/hourly", "nightly_report/nightly"]  # by flow, then name
    assert data["schedule"] == ["every 1 hour", "on request only"]
    assert data["served"] == ["yes", "no process serves it"]
    assert data["queued"] == [1, 0]  # the request waits for the serving process
    assert data["next_run"][0].timestamp() == pytest.approx(t + 600)
    assert data["next_run"][1] is None
    assert data["last_run"][0].startswith("SCHEDULED")
    assert data["last_run"][1] == "-"
    assert shown.view.selected == "greet/hourly"  # the first is selected
    assert shown.view.run.label == "Run greet/hourly…"
    details = shown.view.details.text
    assert f"<a href='?run={requested}'>{requested[:8]}</a>" in details  # linked to its page
    assert f"<a href='?run={slot}'>" in details  # a slot of its schedule is its run too
    assert "times=2" in details  # the deployment's defaults


def test_a_deployment_on_request_only_counts_only_its_own_requests_as_its_runs(store):
    record(store, greet, "adhoc", None, time.time())
    mine = request_deployment_run("greet/adhoc", {"name": "bo"}, store=store)
    other = request_deployment_run("greet/hourly", {"name": "cy"}, store=store)
    shown = page(store)
    [adhoc] = [d for d in shown.deployments.shown if d.deployment.name == "adhoc"]
    assert [r.id for r in adhoc.runs] == [mine]
    [hourly] = [d for d in shown.deployments.shown if d.deployment.name == "hourly"]
    assert [r.id for r in hourly.runs] == [other]


def open_form(store, name: str) -> SimpleNamespace:
    shown = page(store)
    rows = shown.view.source.data["name"]
    shown.view.source.selected.indices = [rows.index(name)]  # a click on its row
    click(shown.view.run)
    assert shown.view.form.root.visible
    return shown


def test_the_run_form_has_a_typed_input_per_parameter_filled_with_the_defaults(store):
    form = open_form(store, "nightly_report/nightly").view.form
    fields = form.fields
    assert list(fields) == ["day", "rate", "copies", "regions", "dry_run", "mode", "limit"]
    widgets = {name: field.widget for name, field in fields.items()}
    assert isinstance(widgets["day"], TextInput)
    assert widgets["day"].value == "2026-01-02"  # the deployment's default, over the flow's
    assert "(required)" not in widgets["day"].title  # the deployment gives it
    assert isinstance(widgets["rate"], NumericInput)
    assert widgets["rate"].mode == "float"
    assert widgets["rate"].value == 0.5
    assert isinstance(widgets["copies"], NumericInput)
    assert widgets["copies"].mode == "int"
    assert isinstance(widgets["regions"], TextAreaInput)
    assert widgets["regions"].value == '["eu"]'  # JSON
    assert isinstance(widgets["dry_run"], Checkbox)
    assert widgets["dry_run"].active is False
    assert isinstance(widgets["mode"], Select)
    assert widgets["mode"].options == ["full", "quick"]
    assert isinstance(widgets["limit"], NumericInput)  # int | None: a number, or empty
    assert widgets["limit"].value is None
    assert widgets["limit"].title == "limit: int | None"
    assert "No process serves it now" in form.title.text


def requests_of(store) -> int:
    return sum(d.queued for d in list_deployments(store))


def test_a_bad_value_shows_its_error_under_its_field_and_requests_nothing(store):
    shown = open_form(store, "nightly_report/nightly")
    form = shown.view.form
    runs_before = len(store.list_flow_runs(limit=None))
    form.fields["regions"].widget.value = '{"eu": 1}'  # an object, not a list
    click(form.start)
    error = form.fields["regions"].error
    assert error.visible
    assert "parameter 'regions' expects array" in error.text
    assert not form.fields["rate"].error.visible  # only the field at fault
    assert "not requested" in form.message.text
    form.fields["regions"].widget.value = "[1, 2]"  # a list, of numbers, not texts
    click(form.start)
    assert "parameter 'regions' expects array: got [1, 2], at [" in error.text
    assert "is not of type 'string'" in error.text
    form.fields["regions"].widget.value = '["eu", "us"]'
    form.fields["day"].widget.value = ""  # left empty: the deployment's default applies
    form.fields["mode"].widget.value = "slow"  # not one of the choices (a forged request)
    click(form.start)
    assert not error.visible  # fixed: its error goes
    assert "parameter 'mode' expects" in form.fields["mode"].error.text
    assert form.requested == []
    assert requests_of(store) == 0  # nothing recorded
    assert len(store.list_flow_runs(limit=None)) == runs_before


def test_a_required_parameter_left_empty_is_named_under_its_field(store):
    record(store, greet, "bare", None, time.time())  # greet's name has no default
    form = open_form(store, "greet/bare").view.form
    assert "(required)" in form.fields["name"].widget.title
    click(form.start)
    assert "missing: it has no default" in form.fields["name"].error.text
    assert requests_of(store) == 0


def test_good_values_request_the_run_as_deployments_run_does(store):
    shown = open_form(store, "nightly_report/nightly")
    form = shown.view.form
    fields = form.fields
    fields["day"].widget.value = "2026-02-03"
    fields["rate"].widget.value = 0.75
    fields["copies"].widget.value = 3
    fields["regions"].widget.value = '["eu", "us"]'
    fields["dry_run"].widget.active = True
    fields["mode"].widget.value = "quick"
    click(form.start)
    [flow_run_id] = form.requested
    assert f"<a href='?run={flow_run_id}'>{flow_run_id}</a>" in form.message.text
    run = daskflow.get_run(flow_run_id, store=store)
    assert run.state.type is S.SCHEDULED  # waits for a serving process
    assert run.flow_name == "nightly_report"
    assert run.parameters == {
        "day": "2026-02-03",
        "rate": 0.75,
        "copies": 3,
        "regions": ["eu", "us"],
        "dry_run": True,
        "mode": "quick",
    }  # limit, left empty, takes the flow's default when the run starts
    assert requests_of(store) == 1  # the request a serving process claims
    shown.deployments.refresh()  # the page's next refresh reads the deployments again
    shown.view.update()
    assert shown.view.source.data["queued"][1] == 1
    assert flow_run_id in shown.view.details.text  # its last run now


def test_a_store_without_deployments_says_where_they_live():
    shown = page(MemoryStore())
    assert not shown.view.body.visible
    assert "Deployments live in a SQLite file or database run store" in shown.view.note.text


def test_an_empty_store_says_how_to_record_a_deployment(tmp_path):
    shown = page(SQLStore(str(tmp_path / "runs.db")))
    assert "No deployment is recorded in this run store" in shown.view.note.text
    assert shown.view.run.disabled

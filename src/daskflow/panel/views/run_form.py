"""The form that asks a deployment for a run, built from its parameter schema.

One input per parameter of the deployment's recorded JSON schema
(:func:`daskflow.api.deployments.parameter_schema`), typed by it: integers
and numbers in a number input, a bool in a checkbox, text (and a choice of
texts) in a text input (a select), anything else — lists, dicts, unions,
no hint — as JSON in a text area. Each is filled with the deployment's
default, else the flow's. Left empty, a field is not given: the default
applies, or the schema says the parameter is missing.

*Start run* sends the values the way ``daskflow deployments run`` does
(:func:`daskflow.panel.deployments.request_run`): checked against the
schema first, so a bad value records nothing and its error shows under its
field; then the run is recorded SCHEDULED for a serving process to pick up,
and the form shows its id, linked to its run page. The button's click comes
over the page's websocket, which is behind the panel's password wherever
the panel asks for one (:mod:`daskflow.panel.auth`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from bokeh.layouts import column, row
from bokeh.models.widgets import (
    Button,
    Checkbox,
    Div,
    NumericInput,
    Select,
    TextAreaInput,
    TextInput,
)

from daskflow.errors import DaskflowError, ParameterValidationError
from daskflow.panel.deployments import DeploymentStatus, request_run
from daskflow.store.base import RunStore

from .common import escape

__all__ = ["RunForm"]

_ERROR: dict[str, str | None] = {"color": "#d62728", "font-size": "12px"}
_WIDTH = 420


class Field:
    """One parameter's input and the Div for its error.

    Attributes
    ----------
    name : str
        The parameter.
    kind : str
        ``"integer"``, ``"number"``, ``"boolean"``, ``"string"``, ``"choice"`` or ``"json"``.
    widget
        The Bokeh input.
    error : Div
        Why the value was refused; hidden while there is nothing to say.
    """

    def __init__(self, name: str, prop: dict[str, Any], default: Any, has_default: bool) -> None:
        self.name = name
        self.kind, options = _kind(prop)
        required = "" if has_default else " (required)"
        title = f"{name}: {_type_name(prop)}{required}"
        self.widget: Any
        if self.kind in ("integer", "number"):
            number = default if isinstance(default, int | float) and default is not True else None
            self.widget = NumericInput(
                title=title, value=number, mode="int" if self.kind == "integer" else "float"
            )
        elif self.kind == "boolean":
            self.widget = Checkbox(label=title, active=bool(default))
        elif self.kind == "choice":
            chosen = default if default in options else options[0]
            self.widget = Select(title=title, value=chosen, options=list[Any](options))
        elif self.kind == "string":
            text = default if isinstance(default, str) else ""
            self.widget = TextInput(title=title, value=text)
        else:
            text = "" if not has_default else json.dumps(default, indent=None)
            self.widget = TextAreaInput(title=f"{title}, as JSON", value=text, rows=2)
        if isinstance(self.widget, TextInput | TextAreaInput):
            # the value as typed, without waiting for the field to lose focus
            self.widget.js_link("value_input", self.widget, "value")
        self.widget.width = _WIDTH
        self.widget.name = f"parameter-{name}"  # what the browser test finds
        self.error = Div(text="", visible=False, styles=_ERROR, width=_WIDTH)
        self.root = column(self.widget, self.error)

    def given(self) -> tuple[bool, Any]:
        """``(True, value)`` when the field holds a value, ``(False, None)`` when empty."""
        widget = self.widget
        if self.kind == "boolean":
            return True, bool(widget.active)
        if self.kind in ("integer", "number"):
            return widget.value is not None, widget.value
        if self.kind == "choice":
            return True, widget.value
        text = widget.value or ""
        if self.kind == "json":
            return bool(text.strip()), text
        return bool(text), text

    def show_error(self, message: str) -> None:
        text = escape(message)
        if self.error.text != text:
            self.error.text = text
        if self.error.visible != bool(text):
            self.error.visible = bool(text)


class RunForm:
    """The run form of one deployment at a time, hidden until :meth:`open`.

    Parameters
    ----------
    store
        The run store requests are recorded in.
    on_requested
        Called after a run was requested (the deployments page reads again).

    Attributes
    ----------
    fields : dict of Field
        By parameter name, in the flow's order.
    message : Div
        The outcome: the new run's id and link, or an error that no field owns.
    requested : list of str
        Flow run ids requested from this form, oldest first.
    """

    def __init__(self, store: RunStore, on_requested: Callable[[], None] | None = None) -> None:
        self.store = store
        self.on_requested = on_requested
        self.deployment: str | None = None
        self.fields: dict[str, Field] = {}
        self.requested: list[str] = []
        self.title = Div(text="")
        self.start = Button(label="Start run", button_type="primary", width=120)
        self.cancel = Button(label="Close", width=100)
        self.message = Div(text="", sizing_mode="stretch_width")
        self.start.on_click(self._on_start)
        self.cancel.on_click(self.close)
        self.buttons = row(self.start, self.cancel)
        self.root = column(  # the fields go between the title and the buttons
            self.title,
            self.buttons,
            self.message,
            visible=False,
            styles={"border": "1px solid #ccc", "border-radius": "6px", "padding": "8px"},
        )

    def open(self, status: DeploymentStatus) -> None:
        """Show the form for this deployment, each field holding its default."""
        deployment = status.deployment
        schema = deployment.parameter_schema
        properties: dict[str, Any] = schema.get("properties", {})
        self.fields = {}
        for name, prop in sorted(properties.items(), key=lambda item: item[1].get("position", 0)):
            has_default = name in deployment.parameters or "default" in prop
            default = deployment.parameters.get(name, prop.get("default"))
            self.fields[name] = Field(name, prop, default, has_default)
        self.deployment = deployment.full_name
        none = "" if self.fields else "<div style='color:#555'>It takes no parameters.</div>"
        self.title.text = (
            f"<b>Run {escape(deployment.full_name)}</b>"
            f"<div style='color:#555'>{escape(_serving_line(status))}</div>{none}"
        )
        fields = [field.root for field in self.fields.values()]
        self.root.children = [self.title, *fields, self.buttons, self.message]
        self.message.text = ""
        self.root.visible = True

    def _on_start(self) -> None:
        self.submit()

    def close(self) -> None:
        """Hide the form."""
        self.root.visible = False

    def submit(self) -> str | None:
        """Check the values and request the run; its flow run id, or None when refused."""
        if self.deployment is None:
            return None
        given = {}
        for name, field in self.fields.items():
            field.show_error("")
            present, value = field.given()
            if present:
                given[name] = value
        try:
            flow_run_id = request_run(self.store, self.deployment, given)
        except ParameterValidationError as exc:
            owner = self.fields.get(exc.parameter)
            if owner is not None:
                owner.show_error(str(exc).split(": ", 1)[-1])
                self.message.text = _error("The run was not requested: a value is refused.")
            else:
                self.message.text = _error(f"The run was not requested: {exc}")
            return None
        except DaskflowError as exc:
            self.message.text = _error(f"The run was not requested: {exc}")
            return None
        self.requested.append(flow_run_id)
        if self.on_requested is not None:
            self.on_requested()
        self.message.text = (
            f"Flow run requested: <a href='?run={flow_run_id}'>{flow_run_id}</a> "
            "(it shows in the flow runs as a serving process takes it)"
        )
        return flow_run_id


def _error(text: str) -> str:
    return f"<span style='color:#d62728'>{escape(text)}</span>"


def _serving_line(status: DeploymentStatus) -> str:
    if status.served:
        return "A serving process takes the run within about a second."
    return "No process serves it now: the run waits, SCHEDULED, until one does."


def _options(prop: dict[str, Any]) -> list[dict[str, Any]]:
    """A property's alternatives other than null."""
    return [o for o in prop.get("anyOf", []) if o.get("type") != "null"]


def _kind(prop: dict[str, Any]) -> tuple[str, list[str]]:
    """The input for a property, and the choices of a ``choice``."""
    options = _options(prop)
    nullable = len(options) < len(prop.get("anyOf", []))
    if len(options) == 1:
        prop = options[0]
    enum = prop.get("enum")
    if enum and all(isinstance(v, str) for v in enum) and not nullable:
        return "choice", list(enum)
    kind = prop.get("type")
    if kind in ("integer", "number", "string"):
        return str(kind), []
    if kind == "boolean" and not nullable:
        return "boolean", []
    return "json", []


def _type_name(prop: dict[str, Any]) -> str:
    """The parameter's type as the form's label says it: ``int``, ``list``, ``int | None``."""
    names = {"integer": "int", "number": "float", "string": "str", "boolean": "bool"}
    names.update({"array": "list", "object": "dict", "null": "None"})
    if "anyOf" in prop:
        return " | ".join(_type_name(o) for o in prop["anyOf"])
    if "enum" in prop:
        return " | ".join(json.dumps(v) for v in prop["enum"])
    kind = prop.get("type")
    return names.get(str(kind), str(kind)) if kind else "any"

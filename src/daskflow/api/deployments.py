"""Deployments: a served flow that other processes can ask to run, by name.

``etl.serve(name="nightly", ...)`` records the deployment ``etl/nightly`` in
the run store (:mod:`daskflow.store.deployments`): its default parameters,
the JSON schema of the flow's parameters (built here from the type hints,
with pydantic, as Prefect does), its schedule. Anyone who can open the
store can then ask for a run — ``daskflow deployments run etl/nightly -p
k=v`` or :func:`run_deployment` — without the flow's code: the parameters
are checked against the recorded schema *before* anything is recorded, and
the run is recorded SCHEDULED at once. A process serving the deployment
picks it up within about a second (:mod:`daskflow.serving.requests`).

The schema is Prefect's shape: an object with a property per parameter
(its title, position and default) and ``required`` for those without a
default. Unlike Prefect, a name the flow does not take is refused
(``additionalProperties`` is false unless the flow takes ``**kwargs``).
"""

from __future__ import annotations

import inspect
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from daskflow.errors import ConfigurationError, DeploymentNotFoundError, ParameterValidationError

__all__ = [
    "check_defaults",
    "check_deployment_name",
    "find_deployment",
    "parameter_schema",
    "read_parameter",
    "request_deployment_run",
    "run_deployment",
    "sql_store",
    "text_parameters",
    "validate_parameters",
]

#: How often :func:`run_deployment` looks at the run it waits for.
_POLL = 0.2


def check_deployment_name(name: str) -> str:
    """``name`` if it can name a deployment (not empty, no ``/``).

    Raises
    ------
    ConfigurationError
        An empty name or one holding ``/``.
    """
    if not isinstance(name, str) or not name.strip() or "/" in name:
        raise ConfigurationError("name", name, "a deployment name, not empty and without '/'")
    return name.strip()


def parameter_schema(fn: Callable[..., Any]) -> dict[str, Any]:
    """The JSON schema of ``fn``'s parameters, from its type hints (pydantic).

    A parameter without a hint, or with one pydantic cannot describe in
    JSON, accepts anything. Defaults that are JSON are recorded.

    Examples
    --------
    >>> def etl(day: str, rate: float = 0.5): ...
    >>> schema = parameter_schema(etl)
    >>> schema["required"], schema["properties"]["rate"]["type"]
    (['day'], 'number')
    """
    from daskflow.api.parameters import parameter_hints

    properties: dict[str, Any] = {}
    required: list[str] = []
    definitions: dict[str, Any] = {}
    any_keyword = False
    hints = parameter_hints(fn)
    for position, (name, param) in enumerate(inspect.signature(fn).parameters.items()):
        if param.kind is param.VAR_KEYWORD:
            any_keyword = True
            continue
        if param.kind in (param.VAR_POSITIONAL, param.POSITIONAL_ONLY):
            continue
        schema = _hint_schema(hints[name], definitions) if name in hints else {}
        schema = {"title": name, "position": position, **schema}
        if param.default is param.empty:
            required.append(name)
        elif _is_json(param.default):
            schema["default"] = param.default
        properties[name] = schema
    document: dict[str, Any] = {
        "title": "Parameters",
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": any_keyword,
    }
    if definitions:
        document["$defs"] = definitions
    return document


def _hint_schema(hint: Any, definitions: dict[str, Any]) -> dict[str, Any]:
    import pydantic

    try:
        schema = dict(pydantic.TypeAdapter(hint).json_schema())
    except Exception:  # arbitrary types, or a hint pydantic cannot describe: anything goes
        return {}
    definitions.update(schema.pop("$defs", {}))
    schema.pop("title", None)
    return schema


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def validate_parameters(
    subject: str, schema: dict[str, Any], parameters: dict[str, Any]
) -> dict[str, Any]:
    """Check ``parameters`` against a recorded schema; return them (JSON values only).

    Raises
    ------
    ParameterValidationError
        An unknown name (the message lists the known ones), a missing
        required parameter, or a value of the wrong type; one line.
    """
    import jsonschema

    from daskflow.api.parameters import cut, shown

    properties = schema.get("properties", {})
    listed = cut(", ".join(properties), 200) or "none"
    if not schema.get("additionalProperties", True):
        for key in parameters:
            if key not in properties:
                raise ParameterValidationError(
                    subject,
                    cut(key),
                    "a name the flow takes",
                    f"no such parameter; the flow's parameters are: {listed}",
                )
    for key, value in parameters.items():
        if not _is_json(value):
            raise ParameterValidationError(
                subject,
                cut(key),
                "a JSON value",
                f"got {shown(value)} (a deployment run's parameters travel as JSON)",
            )
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(parameters))
    if error is None:
        return parameters
    path = list(error.absolute_path)
    if path:
        name = str(path[0])
        where = "".join(f"[{shown(p, 20)}]" for p in path[1:])
        expected = _expected(properties.get(name, {}))
        detail = f"got {shown(parameters.get(name))}" + (f", at {where}" if where else "")
        raise ParameterValidationError(
            subject, cut(name), expected, f"{detail} ({error.message[:200]})"
        )
    if error.validator == "required":
        missing = next((n for n in schema.get("required", []) if n not in parameters), "?")
        raise ParameterValidationError(
            subject, cut(missing), "a value", "missing: it has no default"
        )
    raise ParameterValidationError(subject, "(parameters)", "the flow's parameters", error.message)


def _expected(schema: dict[str, Any]) -> str:
    """A type name for messages, from a property's schema."""
    if "type" in schema:
        return str(schema["type"])
    options = schema.get("anyOf")
    if options:
        return " | ".join(_expected(o) for o in options)
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(v) for v in schema["enum"])
    return "a value"


def text_parameters(schema: dict[str, Any]) -> set[str]:
    """Parameters whose value given as text stays text: of JSON type string (or string | null).

    What ``daskflow deployments run -p`` and the panel's run form read as
    text; the others are read as JSON (:func:`read_parameter`).

    Examples
    --------
    >>> def etl(day: str, rate: float = 0.5): ...
    >>> sorted(text_parameters(parameter_schema(etl)))
    ['day']
    """

    def is_text(prop: dict[str, Any]) -> bool:
        if prop.get("type") == "string":
            return True
        if "enum" in prop:
            return all(isinstance(v, str) for v in prop["enum"])
        options = [o for o in prop.get("anyOf", []) if o.get("type") != "null"]
        return len(options) == 1 and is_text(options[0])

    return {name for name, prop in schema.get("properties", {}).items() if is_text(prop)}


def read_parameter(text: str, as_text: bool) -> Any:
    """A parameter's value given as text: the text itself if ``as_text``, else JSON if it is.

    Text that is not JSON stays text, for the schema to judge
    (:func:`validate_parameters`), as ``daskflow run -p`` reads it.

    Examples
    --------
    >>> read_parameter("[1, 2]", False), read_parameter("12", True), read_parameter("x", False)
    ([1, 2], '12', 'x')
    """
    if as_text:
        return text
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text


def check_defaults(flow: Any, parameters: dict[str, Any]) -> None:
    """Check a deployment's default parameters: known names, right types; some may be missing.

    Raises
    ------
    ParameterValidationError
        A name the flow does not take, or a value of the wrong type.
    """
    schema = parameter_schema(flow.fn)
    validate_parameters(flow.name, {**schema, "required": []}, parameters)


def sql_store(store: Any = None) -> Any:
    """The run store deployments live in: the configured one, or ``store`` (a URL or store).

    Raises
    ------
    ConfigurationError
        A store that is not SQL (``memory``, ``none``): deployments live in a
        store that serving processes share.
    """
    from daskflow.history import _open

    opened = _open(store)
    if not hasattr(opened, "engine"):
        raise ConfigurationError(
            "store",
            getattr(opened, "url", "memory"),
            "a SQLite file or database URL: deployments live in a store that serving "
            "processes share",
        )
    return opened


def find_deployment(store: Any, full_name: str) -> Any:
    """The :class:`~daskflow.store.deployments.DeploymentRow` named ``flow/name``.

    Raises
    ------
    DeploymentNotFoundError
        No deployment of that name (the message lists the known ones).
    """
    from daskflow.store.deployments import get_deployment, list_deployments

    flow_name, sep, name = full_name.partition("/")
    found = get_deployment(store, flow_name, name) if sep else None
    if found is None:
        known = [d.full_name for d in list_deployments(store)]
        raise DeploymentNotFoundError(full_name, getattr(store, "where", store.url), known)
    return found


def request_deployment_run(
    name: str, parameters: dict[str, Any] | None = None, *, store: Any = None
) -> str:
    """Validate, then record a run request of deployment ``name``; return its flow run id."""
    from daskflow.store.deployments import request_run

    opened = sql_store(store)
    deployment = find_deployment(opened, name)
    given = dict(parameters or {})
    merged = validate_parameters(
        deployment.full_name, deployment.parameter_schema, {**deployment.parameters, **given}
    )
    flow_run_id = uuid.uuid4().hex
    run_name = f"{deployment.flow_name}-{flow_run_id[:8]}"
    request_run(opened, deployment, merged, flow_run_id, run_name)
    return flow_run_id


def run_deployment(
    name: str,
    parameters: dict[str, Any] | None = None,
    timeout: float | None = None,
    *,
    store: Any = None,
) -> Any:
    """Ask a served deployment for a run; return its record when it ends.

    The run is recorded SCHEDULED at once; a process serving the deployment
    (``flow.serve(name=...)``, ``daskflow serve ... --name``) starts it within
    about a second, on its own cluster.

    Parameters
    ----------
    name
        ``"flow/deployment"``, as ``daskflow deployments list`` shows it.
    parameters
        The run's parameters, over the deployment's defaults; checked against
        the deployment's parameter schema before anything is recorded.
    timeout
        Seconds to wait for the run to end: None waits as long as it takes,
        ``0`` returns at once (the run SCHEDULED). When it passes, the record
        is returned as it is then (the run goes on), as in Prefect.
    store
        A run store or its URL; default: the configured store.

    Returns
    -------
    FlowRun
        The flow run's record (as :func:`daskflow.get_run` returns it).

    Raises
    ------
    DeploymentNotFoundError
        No deployment of that name; the message lists the known ones.
    ParameterValidationError
        A parameter the flow does not take, or that does not fit its schema.

    Examples
    --------
    >>> run = daskflow.run_deployment(
    ...     "etl/nightly", parameters={"day": "2026-01-02"}
    ... )  # doctest: +SKIP
    >>> run.state.type  # doctest: +SKIP
    <StateType.COMPLETED: 'COMPLETED'>
    """
    from daskflow.history import FlowRun

    if timeout is not None and timeout < 0:
        raise ConfigurationError("timeout", timeout, "seconds >= 0, or None to wait for the end")
    opened = sql_store(store)
    flow_run_id = request_deployment_run(name, parameters, store=opened)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        row = opened.get_flow_run(flow_run_id)
        if row.state.is_final or (deadline is not None and time.monotonic() >= deadline):
            return FlowRun(row, opened)
        left = _POLL if deadline is None else min(_POLL, max(deadline - time.monotonic(), 0))
        time.sleep(left)

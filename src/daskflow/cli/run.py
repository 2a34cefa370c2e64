"""``daskflow run FILE.py:FLOW``: run a flow from a file, once, and report.

How the flow is found: the file is imported by path as a module named after
it (``flows.py`` → ``flows``), registered in ``sys.modules`` with its folder
first on ``sys.path`` (and ``PYTHONPATH``), so worker processes that unpickle
its tasks import the same file by name. The flow is the module attribute
named ``FLOW`` (or the ``Flow`` whose ``name`` is ``FLOW``); with no
``:FLOW``, the file's only flow.

How the run is reported: a small observer on the event bus sees the first
top-level ``FlowRunCreated`` and prints the run id as soon as the run starts;
the flow is called with ``return_state=True`` and its final state decides the
exit code: 0 completed, 1 failed (the error is printed), 2 bad usage.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import sys
import traceback
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import click
import cloudpickle

from daskflow.api.flow import Flow
from daskflow.api.parameters import cut, parameter_hints, shown
from daskflow.cli.interrupt import INTERRUPTED, ctrl_c_cancels
from daskflow.errors import ParameterValidationError
from daskflow.history import format_duration
from daskflow.observers.events import Event, FlowRunCreated, Observer, bus
from daskflow.progress.console_logs import console_level
from daskflow.states import State

__all__ = [
    "load_flow",
    "param_option",
    "parameter_names",
    "parse_pairs",
    "parse_parameters",
    "run_command",
]


def parse_parameters(pairs: Sequence[str], flow: Flow[Any, Any] | None = None) -> dict[str, Any]:
    """``["n=3", "day=2024-01-01"]`` → ``{"n": 3, "day": "2024-01-01"}``.

    A value is read as JSON when it parses (numbers, lists, objects, true,
    null, quoted strings), else kept as the string given. With ``flow``, a
    parameter annotated ``str`` (or ``str | None``, or a ``Literal`` of
    strings) keeps its text as given (``-p name=123`` is the string
    ``"123"``), and a name the flow does not take is refused here, listing
    the names it takes.

    Raises
    ------
    ParameterValidationError
        A pair that is not ``KEY=VALUE`` with KEY a Python name, or (with
        ``flow``) a KEY that is not one of the flow's parameters. The
        message names the parameter, in one line.

    Examples
    --------
    >>> parse_parameters(["xs=[1, 2]", "name=world"])
    {'xs': [1, 2], 'name': 'world'}
    """
    flow_name = cut(flow.name, 80) if flow is not None else "?"
    text_names = _text_parameters(flow.fn) if flow is not None else set()
    keys = cut(", ".join(parameter_names(flow.fn)), 200) if flow is not None else ""
    parameters = parse_pairs(pairs, flow_name, text_names, keys)
    if flow is not None:
        _check_names(flow, parameters)
    return parameters


def parse_pairs(
    pairs: Sequence[str], subject: str, text_names: set[str], keys: str
) -> dict[str, Any]:
    """``KEY=VALUE`` pairs as parameters: JSON values, except for the names in ``text_names``.

    ``subject`` names the flow (or deployment) in errors; ``keys`` lists the
    names it takes, for the message about a pair that is not ``KEY=VALUE``.
    """
    flow_name = subject
    parameters: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ParameterValidationError(
                flow_name,
                cut(key if key.isidentifier() else pair, 40),
                "a value",
                f"expected KEY=VALUE with KEY {f'one of {keys}' if keys else 'a parameter name'}"
                f", got {shown(pair)}",
            )
        if key in text_names:
            parameters[key] = text
            continue
        try:
            parameters[key] = json.loads(text)
        except (ValueError, RecursionError):
            parameters[key] = text
    return parameters


def _text_parameters(fn: Callable[..., Any]) -> set[str]:
    """The parameters whose ``-p`` value stays text: ``str``, ``str | None``, string Literals."""

    def is_text(hint: Any) -> bool:
        if hint is str:
            return True
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin is typing.Literal:
            return all(isinstance(a, str) for a in args)
        if origin in (typing.Union, types.UnionType):
            kept = [a for a in args if a is not type(None)]
            return len(kept) == 1 and is_text(kept[0])
        return False

    return {name for name, hint in parameter_hints(fn).items() if is_text(hint)}


def parameter_names(fn: Callable[..., Any]) -> list[str]:
    """The names ``-p`` can set: the parameters that can be given by keyword."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return []
    return [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _check_names(flow: Flow[Any, Any], parameters: dict[str, Any]) -> None:
    """Refuse a name the flow does not take, listing the ones it does."""
    try:
        params = inspect.signature(flow.fn).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    takes = parameter_names(flow.fn)
    listed = cut(", ".join(takes), 200) or "none"
    for key in parameters:
        if key not in takes:
            raise ParameterValidationError(
                cut(flow.name, 80),
                cut(key),
                "a name the flow takes",
                f"no such parameter; the flow's parameters are: {listed}",
            )


def _split_target(target: str) -> tuple[str, str]:
    path, sep, name = target.rpartition(":")
    if not sep or not name or any(c in name for c in "/\\") or name.endswith(".py"):
        return target, ""  # no ":FLOW" (or only a Windows drive letter)
    return path, name


def _import_file(path: Path) -> ModuleType:
    name = path.stem
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    # worker processes started from here (a LocalCluster) import the file by name too
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (folder, os.environ.get("PYTHONPATH")) if p
    )
    existing = sys.modules.get(name)
    if existing is not None:
        if Path(getattr(existing, "__file__", None) or "").resolve() == path:
            return existing
        raise click.UsageError(
            f"cannot import {path} as module {name!r}: a module of that name is already "
            f"imported from {getattr(existing, '__file__', None) or 'a built-in'}; rename the file"
        )
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise click.UsageError(f"{path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:  # bad usage: say where, as Python would, without our frames
        del sys.modules[name]
        where = f"{exc.filename or path}, line {exc.lineno}"
        code = (exc.text or "").rstrip("\n")
        caret = f"\n    {code}\n    {' ' * max((exc.offset or 1) - 1, 0)}^" if code else ""
        raise click.UsageError(f"{where}: {type(exc).__name__}: {exc.msg}{caret}") from exc
    except Exception as exc:
        del sys.modules[name]
        click.echo(traceback.format_exc(), err=True)
        raise click.ClickException(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
    # the file's code travels to the scheduler and the workers by value: on a cluster
    # of other hosts nothing can import it by name (as for a script's __main__)
    cloudpickle.register_pickle_by_value(module)
    return module


def load_flow(target: str) -> Flow[Any, Any]:
    """The flow that ``FILE.py:FLOW`` names, importing the file.

    Raises
    ------
    click.UsageError
        The file does not exist, or holds no flow of that name (the message
        lists the flows it does hold).

    Examples
    --------
    >>> etl = load_flow("pipelines/etl.py:etl")  # doctest: +SKIP
    """
    path_text, name = _split_target(target)
    path = Path(path_text).expanduser().resolve()
    if not path.is_file():
        raise click.UsageError(f"no flow file {path_text!r} (looked for {path})")
    module = _import_file(path)
    flows = {attr: obj for attr, obj in vars(module).items() if isinstance(obj, Flow)}
    listed = ", ".join(
        attr if obj.name == attr else f"{attr} (named {obj.name!r})" for attr, obj in flows.items()
    )
    if not name:
        if len(flows) == 1:
            return next(iter(flows.values()))
        raise click.UsageError(
            f"{path_text} holds {len(flows)} flows ({listed or 'none'}): "
            f"name one, as {path_text}:FLOW"
        )
    found = flows.get(name) or next((f for f in flows.values() if f.name == name), None)
    if found is not None:
        return found
    if hasattr(module, name):
        kind = type(getattr(module, name)).__name__
        raise click.UsageError(
            f"{name!r} in {path_text} is a {kind}, not a flow (decorate it with @flow); "
            f"flows in {path_text}: {listed or 'none'}"
        )
    raise click.UsageError(
        f"no flow named {name!r} in {path_text}; flows in {path_text}: {listed or 'none'}"
    )


class _RunStarted(Observer):
    """Catches the first top-level flow run created and announces it once."""

    def __init__(self, announce: Callable[[FlowRunCreated], None]) -> None:
        self.event: FlowRunCreated | None = None
        self._announce = announce

    def on_events(self, events: Sequence[Event], **kwargs: Any) -> None:
        if self.event is not None:
            return
        for event in events:
            if isinstance(event, FlowRunCreated) and event.parent_flow_run_id is None:
                self.event = event
                self._announce(event)
                return


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


#: ``-p KEY=VALUE``, repeatable: the parameters of ``run`` and ``serve`` (see parse_parameters)
param_option = click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="A flow parameter; VALUE is read as JSON when it parses, else as a string "
    "(as given for a parameter annotated str). Repeatable.",
)


@click.command("run")
@click.argument("target", metavar="FILE.py[:FLOW]")
@param_option
@click.option(
    "--cluster",
    metavar="SPEC",
    help='Where to run: "sync", "local" or a scheduler address like tcp://host:8786 '
    "(default: the flow's own option, else config daskflow.cluster).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object (id, state, result) at the end."
)
def run_command(target: str, params: tuple[str, ...], cluster: str | None, as_json: bool) -> None:
    """Run the flow FLOW defined in FILE.py, once; print its run id and its result.

    Exit code 0 when the flow run completes, 1 when it fails, 2 on bad usage
    (unknown file, flow or parameter).

    \b
    Examples:
      daskflow run etl.py:etl -p 'days=["2024-01-01", "2024-01-02"]' -p rate=0.9
      daskflow run etl.py:etl --cluster sync
    """
    flow = load_flow(target)
    parameters = parse_parameters(params, flow)
    if cluster:
        flow = flow.with_options(cluster=cluster)
    run_and_report(flow, lambda: flow(**parameters, return_state=True), as_json)


def run_and_report(flow: Flow[Any, Any], start: Callable[[], State], as_json: bool) -> None:
    """Run a flow with ``start()``: announce its id, show its logs, report how it ended.

    Exits 1 when the run did not complete; a parameter refused before the
    run began is a usage error (exit 2).
    """

    def announce(event: FlowRunCreated) -> None:
        click.echo(f"Flow run {event.run_name!r} started: id {event.flow_run_id}", err=as_json)

    watcher = _RunStarted(announce)
    console_level()  # a bad daskflow.logging.console-level is a usage error here
    bus.register(watcher)
    try:  # the run prints its own log lines (daskflow.progress.show_run)
        with ctrl_c_cancels(lambda: watcher.event.flow_run_id if watcher.event else None) as ctrl_c:
            state = start()
    except KeyboardInterrupt:  # a second Ctrl-C: the engine recorded the run CRASHED
        _recorded(watcher.event)
        raise click.exceptions.Exit(INTERRUPTED) from None
    finally:
        bus.unregister(watcher)
    started = watcher.event
    if started is None and isinstance(state.data, ParameterValidationError):
        raise click.UsageError(str(state.data))  # refused before the run began
    recorded = _recorded(started)
    try:
        _report(flow, state, started, as_json)
    except click.exceptions.Exit:
        raise click.exceptions.Exit(INTERRUPTED if ctrl_c.count else 1) from None
    if not recorded:
        raise click.exceptions.Exit(1)


def _recorded(started: FlowRunCreated | None) -> bool:
    """Wait for the run's record; say where it is if not in the store. False: not kept.

    ``daskflow run`` never exits 0 for a run that is neither in the run store
    nor in the journal (see :mod:`daskflow.store.observer`).
    """
    from daskflow import config
    from daskflow.store import default_observer

    observer = default_observer()
    if observer is None or started is None:
        return True
    # the flow's end flushed already; a batch may still be retried, then journaled
    delivered = bus.flush(timeout=config.get_seconds("store-retry") + 30.0)
    outcome = observer.outcome(started.flow_run_id) if delivered else "lost"
    if outcome == "journaled":
        click.echo(
            f"The run store could not be written: this run is kept in the journal "
            f"{observer.journal.path}, and is written into the store when it takes "
            "writes again.",
            err=True,
        )
    elif outcome == "lost":
        click.echo(
            f"This run could not be recorded: the run store "
            f"{getattr(observer.store, 'where', observer.store.url)} and the "
            f"journal in {observer.journal.folder} both refused it (see the error above).",
            err=True,
        )
    return outcome != "lost"


def _report(
    flow: Flow[Any, Any], state: State, started: FlowRunCreated | None, as_json: bool
) -> None:
    name = started.run_name if started else flow.name
    took = state.timestamp - started.timestamp if started else None
    if as_json:
        document: dict[str, Any] = {
            "id": started.flow_run_id if started else None,
            "name": name,
            "flow_name": flow.name,
            "state": state.type.value,
            "message": state.message,
            "duration": took,
        }
        if state.is_completed():
            document["result"] = _jsonable(state.result())
        else:
            document["error_type"] = state.error_type
            document["error_message"] = state.error_message
            document["traceback"] = state.traceback
        click.echo(json.dumps(document, indent=2, default=str))
    elif state.is_completed():
        click.echo(f"Flow run {name!r} {state.type.value} in {format_duration(took)}")
        click.echo(f"Result: {state.result()!r}")
    else:
        if state.traceback:
            click.echo(state.traceback.rstrip(), err=True)
        click.echo(f"Flow run {name!r} {state.type.value}: {state.message}", err=True)
    if not state.is_completed():
        raise click.exceptions.Exit(1)

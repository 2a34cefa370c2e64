"""What the commands print: rich for people, JSON for scripts.

Every listing command builds plain dicts first (:func:`flow_run_dict` and
friends: full ids, ISO 8601 UTC times, durations in seconds) and then either
dumps them as one JSON document (``--json``) or renders rich tables from the
records. Colours follow :data:`daskflow.history.STATE_COLORS`, shared with the
notebook card. Rich is imported when a command prints, never at import.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import click

from daskflow.history import STATE_COLORS, Artifact, FlowRun, LogRecord, TaskRun
from daskflow.states import StateType

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

__all__ = [
    "artifact_dict",
    "console",
    "echo_json",
    "flow_run_dict",
    "json_option",
    "local_time",
    "log_dict",
    "state_text",
    "task_run_dict",
]

F = TypeVar("F", bound=Callable[..., Any])

#: Width for tables when stdout is not a terminal (piped, captured): wide
#: enough that full ids and names are never wrapped.
PIPE_WIDTH = 200


def json_option(fn: F) -> F:
    """The ``--json`` flag of every listing command."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON (one document) instead of tables."
    )(fn)


def state_option(fn: F) -> F:
    """The ``--state`` filter of the listing commands (any case)."""
    choice = click.Choice([t.value for t in StateType], case_sensitive=False)
    return click.option("--state", type=choice, help="Only runs in this state.")(fn)


def limit_option(fn: F) -> F:
    """The ``--limit`` of the listing commands."""
    return click.option(
        "--limit", default=25, show_default=True, type=click.IntRange(min=1), help="At most N runs."
    )(fn)


def console() -> Console:
    """A rich console on stdout; wide when piped, so rows stay on one line."""
    from rich.console import Console

    piped = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(highlight=False, width=PIPE_WIDTH if piped else None)


def echo_json(document: Any) -> None:
    """Print ``document`` as indented JSON (values JSON cannot hold become strings)."""
    click.echo(json.dumps(document, indent=2, default=str))


def state_text(state: StateType) -> Text:
    """The state's name in its colour."""
    from rich.text import Text

    return Text(state.value, style=f"bold {STATE_COLORS[state]}")


def local_time(when: datetime | None) -> str:
    """A UTC datetime shown in local time, to the second; ``-`` for None."""
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S") if when else "-"


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


def _seconds(duration: timedelta | None) -> float | None:
    return duration.total_seconds() if duration is not None else None


def flow_run_dict(run: FlowRun) -> dict[str, Any]:
    """A flow run as plain JSON-able values."""
    state = run.state
    return {
        "id": run.id,
        "name": run.name,
        "flow_name": run.flow_name,
        "state": state.type.value,
        "message": state.message,
        "parameters": run.parameters,
        "created": _iso(run.created),
        "start_time": _iso(run.start_time),
        "end_time": _iso(run.end_time),
        "duration": _seconds(run.duration),
        "parent_id": run.parent_id,
        "resumed_from": run.resumed_from,
        "version": run.version,
        "scheduled_time": _iso(run.scheduled_time),
        "cancel_requested": _iso(run.cancel_requested),
        "error_type": state.error_type,
        "error_message": state.error_message,
        "traceback": state.traceback,
    }


def task_run_dict(run: TaskRun) -> dict[str, Any]:
    """A task run as plain JSON-able values."""
    return {
        "id": run.id,
        "flow_run_id": run.flow_run_id,
        "name": run.name,
        "task_name": run.task_name,
        "map_index": run.map_index,
        "parent_task_run_id": run.parent_task_run_id,
        "state": run.state.type.value,
        "attempts": run.attempts,
        "worker": run.worker,
        "start_time": _iso(run.start_time),
        "end_time": _iso(run.end_time),
        "duration": _seconds(run.duration),
        "tags": list(run.tags),
        "error_type": run.error_type,
        "error_message": run.error_message,
        "traceback": run.traceback,
    }


def log_dict(record: LogRecord) -> dict[str, Any]:
    """A log record as plain JSON-able values."""
    return {
        "timestamp": record.timestamp.isoformat(),
        "level": record.level_name,
        "logger": record.logger,
        "message": record.message,
        "task_name": record.task_name,
        "task_run_id": record.task_run_id,
        "flow_run_id": record.flow_run_id,
    }


def artifact_dict(artifact: Artifact) -> dict[str, Any]:
    """An artifact as plain JSON-able values (``data`` as it was stored)."""
    return {
        "id": artifact.id,
        "key": artifact.key,
        "type": artifact.type,
        "description": artifact.description,
        "data": artifact.data,
        "created": _iso(artifact.created),
        "updated": _iso(artifact.updated),
        "flow_run_id": artifact.flow_run_id,
        "task_run_id": artifact.task_run_id,
        "task_name": artifact.task_name,
    }

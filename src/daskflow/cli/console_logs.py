"""Run log records on the terminal as they arrive, from every worker.

``daskflow run`` registers a :class:`ConsoleLogs` observer on the event bus
for the life of the run. Every log record of the run reaches it as a
``LogEmitted`` event, wherever it was written: the flow function, a task on
a worker process or a remote cluster (records travel in the workers' event
batches), a ``log_prints`` print, a retry. It prints them on stderr, about
a quarter of a second after they happen, the way Prefect's console does::

    12:04:31.207 | INFO    | Task run 'extract-3' - downloading 2024-01-03
    12:04:31.410 | WARNING | Task run 'extract-3' - attempt 1 of 4 failed (...)

One path for every record, so none prints twice. The threshold is config
``daskflow.logging.console-level`` (``INFO``; ``OFF`` prints none).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from daskflow import config
from daskflow.errors import ConfigurationError
from daskflow.observers.events import Event, FlowRunCreated, LogEmitted, Observer, TaskRunCreated

__all__ = ["ConsoleLogs", "console_level"]


def console_level() -> int | None:
    """The configured threshold (``daskflow.logging.console-level``); None: OFF."""
    value = config.get("logging.console-level", "INFO")
    if value is None or str(value).strip().upper() in ("OFF", "NONE", "FALSE"):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    level = logging.getLevelName(str(value).strip().upper())
    if not isinstance(level, int):
        raise ConfigurationError(
            "daskflow.logging.console-level", value, "a level name like INFO, or OFF"
        )
    return level


class ConsoleLogs(Observer):
    """Prints run log records at or above ``level`` on ``stream``.

    It learns the names of flow runs and task runs from their creation
    events, so each line says whose record it is.
    """

    def __init__(self, level: int, stream: TextIO | None = None) -> None:
        self.level = level
        self.stream = stream
        self._flows: dict[str, str] = {}
        self._tasks: dict[str, str] = {}

    def on_events(self, events: Sequence[Event], **kwargs: Any) -> None:
        lines = []
        for event in events:
            if isinstance(event, LogEmitted):
                if event.level >= self.level:
                    lines.append(self._line(event))
            elif isinstance(event, TaskRunCreated):
                self._tasks[event.task_run_id] = event.run_name
            elif isinstance(event, FlowRunCreated):
                self._flows[event.flow_run_id] = event.run_name
        if lines:
            stream = self.stream or sys.stderr
            stream.write("".join(lines))
            stream.flush()

    def _line(self, event: LogEmitted) -> str:
        if event.task_run_id is not None:
            who = f"Task run {self._tasks.get(event.task_run_id, event.task_run_id[:8])!r}"
        else:
            who = f"Flow run {self._flows.get(event.flow_run_id, event.flow_run_id[:8])!r}"
        clock = time.strftime("%H:%M:%S", time.localtime(event.timestamp))
        millis = int(event.timestamp % 1 * 1000)
        level = logging.getLevelName(event.level)
        return f"{clock}.{millis:03d} | {level:<7} | {who} - {event.message}\n"

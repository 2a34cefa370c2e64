"""Run log records on the console as they arrive, from every worker.

Every top-level flow run — called from a script, by ``daskflow run``, by
``daskflow serve``, in a notebook cell — registers one :class:`ConsoleLogs`
observer on the event bus for its life (:func:`daskflow.progress.show_run`
does, where the engine sets the run up; a subflow registers none). Every log
record of the run and of its subflows reaches it as a ``LogEmitted`` event,
wherever it was written: the flow function, a task on a worker process or a
remote cluster (records travel in the workers' event batches), a
``log_prints`` print, a retry. It prints each once, the way Prefect's
console does::

    12:04:31.207 | INFO    | Task run 'extract-3' - downloading 2024-01-03
    12:04:31.410 | WARNING | Task run 'extract-3' - attempt 1 of 4 failed (...)

Where the lines go:

- while the terminal progress view is live, through its ``rich`` console,
  so they scroll above the redrawn bars;
- otherwise to ``sys.stderr`` as it was when the run began (in a notebook,
  the running cell's stderr: the lines show under the cell).

Records reach the console by this one path only, so none prints twice. The
threshold is config ``daskflow.logging.console-level`` (``INFO``; ``OFF``
prints none). :func:`show_on_stderr` is for a process's own loggers (``daskflow
serve`` says when the next run is due with it), not for run records.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from daskflow import config
from daskflow.errors import ConfigurationError
from daskflow.observers.events import Event, FlowRunCreated, LogEmitted, Observer, TaskRunCreated

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["ConsoleLogs", "console_level", "format_record", "show_on_stderr"]


def console_level() -> int | None:
    """The configured threshold (``daskflow.logging.console-level``); None: OFF.

    Raises
    ------
    ConfigurationError
        The value is neither a level (name or number) nor ``OFF``.

    Examples
    --------
    >>> import dask
    >>> with dask.config.set({"daskflow.logging.console-level": "warning"}):
    ...     console_level()
    30
    """
    value = config.get("logging.console-level", "INFO")
    if value is None or value is False or str(value).strip().upper() in ("OFF", "NONE", "FALSE"):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    level = logging.getLevelName(str(value).strip().upper())
    if not isinstance(level, int):
        raise ConfigurationError(
            "daskflow.logging.console-level", value, "a level name like INFO, or OFF"
        )
    return level


def format_record(timestamp: float, level: int, who: str, message: str) -> str:
    """One console line, e.g. ``12:04:31.207 | INFO    | Task run 'x' - message``."""
    clock = time.strftime("%H:%M:%S", time.localtime(timestamp))
    millis = int(timestamp % 1 * 1000)
    return f"{clock}.{millis:03d} | {logging.getLevelName(level):<7} | {who} - {message}"


class ConsoleLogs(Observer):
    """Prints the log records of one flow run (and its subflows) at or above ``level``.

    It learns the names of flow runs and task runs from their creation
    events, so each line says whose record it is.

    Parameters
    ----------
    level
        The threshold, e.g. ``logging.INFO``.
    flow_run_id
        The top-level flow run to follow; subflow runs created under it are
        followed too, records of other runs are skipped. None: every run.
    stream
        Where to write; ``sys.stderr`` as it is now by default.
    run_name
        The name of the flow run ``flow_run_id``, when its ``FlowRunCreated``
        is not going to reach this observer.

    Examples
    --------
    >>> from daskflow.observers.events import bus
    >>> logs = bus.register(ConsoleLogs(logging.INFO, flow_run_id))  # doctest: +SKIP
    >>> # ... the flow runs
    >>> bus.unregister(logs)  # doctest: +SKIP
    """

    def __init__(
        self,
        level: int,
        flow_run_id: str | None = None,
        stream: TextIO | None = None,
        *,
        run_name: str | None = None,
    ) -> None:
        self.level = level
        self.flow_run_id = flow_run_id
        self.stream = stream if stream is not None else sys.stderr
        self._console: Console | None = None
        self._console_lock = threading.Lock()
        self._flow_ids = {flow_run_id} if flow_run_id is not None else None
        self._flows: dict[str, str] = {}
        if flow_run_id is not None and run_name is not None:
            self._flows[flow_run_id] = run_name
        self._tasks: dict[str, str] = {}

    def use_console(self, console: Console | None) -> None:
        """Print through a live ``rich`` console from now on (None: back to the stream)."""
        with self._console_lock:
            self._console = console

    def on_events(self, events: Sequence[Event], **kwargs: Any) -> None:
        """Print the records of a batch (on the bus's dispatcher thread)."""
        flow_ids = self._flow_ids
        lines = []
        for event in events:
            if flow_ids is not None and event.flow_run_id not in flow_ids:
                if isinstance(event, FlowRunCreated) and event.parent_flow_run_id in flow_ids:
                    flow_ids.add(event.flow_run_id)  # a subflow: follow it too
                    self._flows[event.flow_run_id] = event.run_name
                continue
            if isinstance(event, LogEmitted):
                if event.level >= self.level:
                    lines.append(self._line(event))
            elif isinstance(event, TaskRunCreated):
                self._tasks[event.task_run_id] = event.run_name
            elif isinstance(event, FlowRunCreated):
                self._flows[event.flow_run_id] = event.run_name
        if lines:
            self._write(lines)

    def _write(self, lines: list[str]) -> None:
        with self._console_lock:
            console = self._console
            if console is not None:  # above the live progress lines
                from rich.text import Text

                for line in lines:
                    console.print(Text(line), soft_wrap=True, highlight=False)
                return
        self.stream.write("".join(f"{line}\n" for line in lines))
        self.stream.flush()

    def _line(self, event: LogEmitted) -> str:
        if event.task_run_id is not None:
            who = f"Task run {self._tasks.get(event.task_run_id, event.task_run_id[:8])!r}"
        else:
            who = f"Flow run {self._flows.get(event.flow_run_id, event.flow_run_id[:8])!r}"
        return format_record(event.timestamp, event.level, who, event.message)


class _ProcessFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)  # the message, with a traceback if any
        return format_record(record.created, record.levelno, record.name, message)


def show_on_stderr(*names: str) -> Callable[[], None]:
    """Print records of these loggers (INFO and up) on stderr; returns an undo.

    For a process's own messages (``daskflow serve``'s "next run at ..."),
    in the same format as run records. Never pass ``daskflow.runs``: run
    records reach the console through :class:`ConsoleLogs`.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_ProcessFormatter())
    loggers = [logging.getLogger(name) for name in names]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.addHandler(handler)
        if log.level == logging.NOTSET or log.level > logging.INFO:
            log.setLevel(logging.INFO)

    def undo() -> None:
        for log, level in zip(loggers, levels, strict=True):
            log.removeHandler(handler)
            log.setLevel(level)

    return undo

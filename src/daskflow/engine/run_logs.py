"""Log records of runs, shipped from wherever the code runs to the run store.

``get_run_logger()`` returns a logger bound to the current run; ``print`` in a
``log_prints`` run logs too (:mod:`daskflow.engine.prints`). Both go to the
``daskflow.runs`` logger hierarchy, where one :class:`RunLogHandler` per
process turns each record into a log event and hands it to
:func:`daskflow.engine.emit.emit` — the same path as state transitions:

- on a Dask worker (any cluster, remote ones included) it joins the worker's
  event buffer and travels in the next batch (never a round trip per record);
- in the flow's own thread, or under ``cluster="sync"``, the flow run's
  local sink receives it directly.

Records still propagate to the usual handlers (those a user configured);
the console shows them from their events, once, wherever they were written
(:mod:`daskflow.progress.console_logs`). A log event is a tuple
``(flow_run_id, task_run_id, "LOG", timestamp, levelno, logger, message)``.
"""

from __future__ import annotations

import logging
import threading
import traceback

from daskflow.engine.current import current_runner
from daskflow.engine.emit import emit
from daskflow.engine.task_context import current_task_run
from daskflow.errors import NoFlowRunError

__all__ = ["LOG", "ROOT", "RunLogHandler", "current_task_run", "get_run_logger", "install"]

LOG = "LOG"
ROOT = "daskflow.runs"


_installed = threading.Lock()
_handler: RunLogHandler | None = None


class RunLogHandler(logging.Handler):
    """Turns records of ``daskflow.runs.*`` loggers into run log events."""

    def emit(self, record: logging.LogRecord) -> None:
        flow_run_id = getattr(record, "flow_run_id", None)
        task_run_id = getattr(record, "task_run_id", None)
        if flow_run_id is None:
            task_run = current_task_run.get()
            if task_run is None:
                return  # not inside a run: the usual handlers still get it
            flow_run_id, task_run_id = task_run.flow_run_id, task_run.task_run_id
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
            emit(
                (
                    flow_run_id,
                    task_run_id,
                    LOG,
                    record.created,
                    record.levelno,
                    record.name,
                    message,
                )
            )
        except Exception:
            self.handleError(record)


def install(level: int = logging.INFO) -> None:
    """Attach the handler to ``daskflow.runs`` once per process (cheap after)."""
    global _handler
    if _handler is not None:
        return
    with _installed:
        if _handler is None:
            handler = RunLogHandler()
            root = logging.getLogger(ROOT)
            root.addHandler(handler)
            if root.level == logging.NOTSET or root.level > level:
                root.setLevel(level)
            _handler = handler


def get_run_logger() -> logging.LoggerAdapter[logging.Logger]:
    """The logger of the task run or flow run this code runs in.

    Raises
    ------
    NoFlowRunError
        Outside a task run or a flow run.

    Examples
    --------
    >>> @task
    ... def extract(day: str) -> int:
    ...     get_run_logger().info("extracting %s", day)
    ...     return 1
    """
    install()
    task_run = current_task_run.get()
    if task_run is not None:
        return logging.LoggerAdapter(
            logging.getLogger(f"{ROOT}.task_run"),
            {
                "flow_run_id": task_run.flow_run_id,
                "task_run_id": task_run.task_run_id,
                "task_name": task_run.task_name,
            },
        )
    runner = current_runner()
    if runner is not None:
        return logging.LoggerAdapter(
            logging.getLogger(f"{ROOT}.flow_run"), {"flow_run_id": runner.flow_run_id}
        )
    raise NoFlowRunError("get_run_logger()", "or a task called from one")

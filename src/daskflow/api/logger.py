"""``get_run_logger()``: a logger whose records are kept with the current run.

Inside a task it is bound to the task run (on whichever worker it runs),
inside a flow function to the flow run. Records reach the run store in
batches (see :mod:`daskflow.engine.run_logs`) and still go to the usual
logging handlers.
"""

from __future__ import annotations

import logging

from daskflow.engine.run_logs import ROOT, current_task_run, install
from daskflow.engine.runner import current_runner
from daskflow.errors import NoFlowRunError

__all__ = ["get_run_logger"]


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

"""daskflow: workflows in plain Python, run on Dask.

Mark functions with :func:`task` and :func:`flow`; calling a flow runs its task
calls as tracked task runs on a Dask cluster (an embedded ``LocalCluster`` by
default), in parallel where the data allows, with retries, timeouts and hooks.

Importing daskflow does no work: no cluster, no store, no network. The names
below are imported on first use, so a script (or a worker process unpickling
one of daskflow's functions) loads only the modules it needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from daskflow import config as _config  # noqa: F401  (loads the daskflow.yaml defaults)
from daskflow._version import __version__

# bound now: config imported them already, and every error is in vars(daskflow)
from daskflow.errors import (
    ClusterConnectionError,
    DaskflowError,
    DeploymentNotFoundError,
    MapLengthError,
    ParameterValidationError,
    RunNotFoundError,
    SerializationError,
)

if TYPE_CHECKING:
    from daskflow import runtime
    from daskflow.api.cancelled import is_cancelled
    from daskflow.api.deployments import run_deployment
    from daskflow.api.flow import Flow, flow
    from daskflow.api.futures import MappedFuture, TaskFuture, wait
    from daskflow.api.logger import get_run_logger
    from daskflow.api.tags import tags
    from daskflow.api.task import Task, task
    from daskflow.engine.limits import concurrency_limit
    from daskflow.graph.arguments import allow_failure, quote, unmapped
    from daskflow.history import FlowRun, get_run, runs, task_runs
    from daskflow.options import exponential_backoff
    from daskflow.states import State, StateType
    from daskflow.transactions import transaction

__all__ = [
    "ClusterConnectionError",
    "DaskflowError",
    "DeploymentNotFoundError",
    "Flow",
    "FlowRun",
    "MapLengthError",
    "MappedFuture",
    "ParameterValidationError",
    "RunNotFoundError",
    "SerializationError",
    "State",
    "StateType",
    "Task",
    "TaskFuture",
    "__version__",
    "allow_failure",
    "concurrency_limit",
    "exponential_backoff",
    "flow",
    "get_run",
    "get_run_logger",
    "is_cancelled",
    "quote",
    "run_deployment",
    "runs",
    "runtime",
    "tags",
    "task",
    "task_runs",
    "transaction",
    "unmapped",
    "wait",
]

#: The module each public name comes from, imported when the name is first read.
_SOURCES = {
    "Flow": "daskflow.api.flow",
    "FlowRun": "daskflow.history",
    "MappedFuture": "daskflow.api.futures",
    "State": "daskflow.states",
    "StateType": "daskflow.states",
    "Task": "daskflow.api.task",
    "TaskFuture": "daskflow.api.futures",
    "allow_failure": "daskflow.graph.arguments",
    "concurrency_limit": "daskflow.engine.limits",
    "exponential_backoff": "daskflow.options",
    "flow": "daskflow.api.flow",
    "get_run": "daskflow.history",
    "get_run_logger": "daskflow.api.logger",
    "is_cancelled": "daskflow.api.cancelled",
    "quote": "daskflow.graph.arguments",
    "run_deployment": "daskflow.api.deployments",
    "runs": "daskflow.history",
    "tags": "daskflow.api.tags",
    "task": "daskflow.api.task",
    "task_runs": "daskflow.history",
    "transaction": "daskflow.transactions",
    "unmapped": "daskflow.graph.arguments",
    "wait": "daskflow.api.futures",
}


def __getattr__(name: str) -> Any:
    # the subpackage, as `import daskflow.runtime` would bind it
    if name == "runtime":
        return importlib.import_module("daskflow.runtime")
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(source), name)
    globals()[name] = value  # read once: later reads find it here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

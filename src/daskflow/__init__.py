"""daskflow: workflows in plain Python, run on Dask.

Mark functions with :func:`task` and :func:`flow`; calling a flow runs its task
calls as tracked task runs on a Dask cluster (an embedded ``LocalCluster`` by
default), in parallel where the data allows, with retries, timeouts and hooks.

Importing daskflow does no work: no cluster, no store, no network.
"""

from daskflow import config as _config  # noqa: F401  (loads the daskflow.yaml defaults)
from daskflow import runtime
from daskflow._version import __version__
from daskflow.api.cancelled import is_cancelled
from daskflow.api.deployments import run_deployment
from daskflow.api.flow import Flow, flow
from daskflow.api.futures import MappedFuture, TaskFuture, wait
from daskflow.api.logger import get_run_logger
from daskflow.api.tags import tags
from daskflow.api.task import Task, task
from daskflow.engine.limits import concurrency_limit
from daskflow.errors import (
    ClusterConnectionError,
    DaskflowError,
    DeploymentNotFoundError,
    MapLengthError,
    ParameterValidationError,
    RunNotFoundError,
    SerializationError,
)
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

"""The deployments the panel shows, read from the run store, and the run requests it makes.

A deployment (``flow.serve(name=...)``, ``daskflow serve --name``) lives in
a SQL run store (:mod:`daskflow.store.deployments`). The panel lists each
with its schedule, its next run (the SCHEDULED slot a serving process
recorded), whether a live process serves it (a heartbeat younger than
:data:`~daskflow.serving.requests.LIVE_WITHIN`, as ``daskflow deployments
list`` says) and its last runs. Deployments change rarely and slowly, so
they are read at most every :data:`READ_EVERY` seconds: one query for the
list, two small ones per deployment (at most :data:`DEPLOYMENTS_SHOWN`).

A run request from the panel's form goes the way of ``daskflow deployments
run``: :func:`request_run` reads the form's values as ``-p`` does
(:func:`~daskflow.api.deployments.read_parameter`), then
:func:`~daskflow.api.deployments.request_deployment_run` validates them
against the deployment's parameter schema — the one validation, raising
:class:`~daskflow.errors.ParameterValidationError` before anything is
recorded — and records the run SCHEDULED with its request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from daskflow.store.base import FlowRunRow, RunStore
from daskflow.store.deployments import DeploymentRow

__all__ = [
    "DEPLOYMENTS_SHOWN",
    "READ_EVERY",
    "RUNS_SHOWN",
    "DeploymentStatus",
    "Deployments",
    "request_run",
]

#: Seconds between two reads of the deployments (a heartbeat comes every 5 s).
READ_EVERY = 2.0
#: Deployments listed, at most, and last runs read for each.
DEPLOYMENTS_SHOWN, RUNS_SHOWN = 100, 5


@dataclass(frozen=True, slots=True)
class DeploymentStatus:
    """One deployment as the panel shows it.

    Attributes
    ----------
    deployment : DeploymentRow
        As stored: flow, name, defaults, parameter schema, schedule, requests waiting.
    served : bool
        Whether a live process serves it now.
    next_run : float or None
        When its schedule's next run starts (seconds since the epoch), if a
        serving process recorded it.
    runs : tuple of FlowRunRow
        Its newest runs, newest first.
    """

    deployment: DeploymentRow
    served: bool
    next_run: float | None
    runs: tuple[FlowRunRow, ...]


class Deployments:
    """The deployments of a run store, refreshed at most every :data:`READ_EVERY` seconds.

    Parameters
    ----------
    store
        The panel's run store; deployments live in SQL stores only.
    clock
        Seconds since the epoch (tests pass their own).

    Attributes
    ----------
    shown : list of DeploymentStatus
        By flow name, then name.
    supported : bool
        False for a store that holds no deployments (``memory``).
    """

    def __init__(self, store: RunStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self.supported = hasattr(store, "engine")
        self.shown: list[DeploymentStatus] = []
        self._due = 0.0

    def refresh(self, force: bool = False) -> None:
        """Read the deployments if :data:`READ_EVERY` seconds passed (store reads: a thread)."""
        if not self.supported or (not force and time.monotonic() < self._due):
            return
        from daskflow.serving.requests import is_served
        from daskflow.store.deployments import list_deployments, next_slot, recent_runs

        store: Any = self.store
        now = self.clock()
        shown = []
        for row in list_deployments(store)[:DEPLOYMENTS_SHOWN]:
            upcoming = next_slot(store, row.flow_name) if row.schedule is not None else None
            runs = tuple(recent_runs(store, row, RUNS_SHOWN))
            shown.append(DeploymentStatus(row, is_served(row.heartbeat, now), upcoming, runs))
        self.shown = shown
        self._due = time.monotonic() + READ_EVERY

    def expire(self) -> None:
        """Read again at the next :meth:`refresh` (a run was just requested)."""
        self._due = 0.0

    def find(self, full_name: str) -> DeploymentStatus | None:
        """The deployment ``flow/name`` as last read, or None."""
        return next((d for d in self.shown if d.deployment.full_name == full_name), None)


def request_run(store: RunStore, full_name: str, given: Mapping[str, Any]) -> str:
    """Ask deployment ``full_name`` for a run with the form's values; the new flow run's id.

    ``given`` maps parameter names to what the form holds: text (read as
    ``daskflow deployments run -p`` reads it) or a typed value (a number, a
    bool); names left out take the deployment's defaults.

    Raises
    ------
    ParameterValidationError
        A value that does not fit the deployment's parameter schema (its
        ``parameter`` names the field); nothing is recorded.
    DeploymentNotFoundError
        The deployment is no longer recorded.
    """
    from daskflow.api.deployments import (
        find_deployment,
        read_parameter,
        request_deployment_run,
        text_parameters,
    )

    deployment = find_deployment(store, full_name)
    texts = text_parameters(deployment.parameter_schema)
    parameters = {
        name: read_parameter(value, name in texts) if isinstance(value, str) else value
        for name, value in given.items()
    }
    return request_deployment_run(deployment.full_name, parameters, store=store)

"""Artifacts of runs, shipped from wherever they are created to the run store.

:mod:`daskflow.artifacts` makes an artifact's content (JSON text) in the
user's code and calls :func:`send_created` or :func:`send_updated`, which
build an event tuple and hand it to :func:`daskflow.engine.emit.emit`, the
path of log records (:mod:`daskflow.engine.run_logs`) and transitions:

- in a task run on a Dask worker (any cluster, remote ones included) it
  joins the worker's event buffer and travels in the next batch: no round
  trip per artifact;
- in the flow function, or in a task under ``cluster="sync"``, the flow
  run's local sink receives it;
- outside any run (a script, a test calling ``task.fn``) it is published on
  the event bus at once with no run ids, for the configured store to
  record, and the call returns once it was delivered.

The flow run's runner turns the tuples into events (:func:`to_event`)::

    (flow_run_id, task_run_id, "ARTIFACT", timestamp, id, key, type, data, description)
    (flow_run_id, task_run_id, "ARTIFACT_UPDATE", timestamp, id, data, description)
"""

from __future__ import annotations

import time
from typing import Any

from daskflow.engine.emit import emit
from daskflow.engine.run_logs import current_task_run
from daskflow.observers.events import ArtifactCreated, ArtifactUpdated

__all__ = ["ARTIFACT", "ARTIFACT_UPDATE", "KINDS", "send_created", "send_updated", "to_event"]

ARTIFACT = "ARTIFACT"
ARTIFACT_UPDATE = "ARTIFACT_UPDATE"
#: The kinds (third field) of artifact event tuples.
KINDS = frozenset({ARTIFACT, ARTIFACT_UPDATE})


def send_created(
    artifact_id: str, key: str | None, kind: str, data: str, description: str | None
) -> None:
    """Record a new artifact against the current run (or none, outside any)."""
    _send((ARTIFACT, time.time(), artifact_id, key, kind, data, description))


def send_updated(artifact_id: str, data: str, description: str | None) -> None:
    """Record new content of an artifact (a progress update), made by the current run."""
    _send((ARTIFACT_UPDATE, time.time(), artifact_id, data, description))


def to_event(event: tuple[Any, ...]) -> ArtifactCreated | ArtifactUpdated:
    """The event of an artifact event tuple."""
    flow_run_id, task_run_id, kind, timestamp, artifact_id = event[:5]
    if kind == ARTIFACT:
        key, type_, data, description = event[5:9]
        return ArtifactCreated(
            flow_run_id, task_run_id, artifact_id, key, type_, data, description, timestamp
        )
    data, description = event[5:7]
    return ArtifactUpdated(flow_run_id, task_run_id, artifact_id, data, description, timestamp)


def _send(fields: tuple[Any, ...]) -> None:
    task_run = current_task_run.get()
    if task_run is not None:
        emit((task_run.flow_run_id, task_run.task_run_id, *fields))
        return
    from daskflow.engine.current import current_runner

    runner = current_runner()
    if runner is not None:
        emit((runner.flow_run_id, None, *fields))
        return
    _outside_any_run(to_event((None, None, *fields)))


def _outside_any_run(event: ArtifactCreated | ArtifactUpdated) -> None:
    """Publish an artifact made outside any run, and wait until it was delivered."""
    from daskflow.observers.events import bus
    from daskflow.store.observer import default_observer

    default_observer()  # the configured store listens from now on (none: nothing records it)
    if bus.active:
        bus.publish([event])
        bus.flush()

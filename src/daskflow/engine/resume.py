"""Matching the task runs of a resumed flow run to those of the run it resumes.

``etl.resume(RUN_ID)`` runs the flow function again with the parameters of
flow run RUN_ID, as a *new* flow run linked to it (``resumed_from``): the old
run's history is never rewritten. Each task run the new run creates is
matched to the old run's task run in the same place, and when that one
completed with a stored result, the new one loads it and ends ``CACHED``
instead of running.

"The same place" is the task run's *identity*: its task name, its run name
(``inc``, ``inc-3`` for element 3 of a map, or the ``task_run_name``
template filled in) and how many runs with that task name and run name the
flow run created before it. A flow function that makes the same calls in the
same order (what a failed run re-run with the same parameters does) gives
every task run the identity it had. A run whose old counterpart failed, or
whose result was not stored, runs again.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["Identities", "ResumePlan"]

Identity = tuple[str, str, int]


class Identities:
    """Hands out the identity of each task run of one flow run, in creation order."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def next(self, task_name: str, run_name: str) -> Identity:
        with self._lock:
            n = self._seen.get((task_name, run_name), 0)
            self._seen[(task_name, run_name)] = n + 1
        return (task_name, run_name, n)


class ResumePlan:
    """The stored results of a flow run's completed task runs, by identity.

    Parameters
    ----------
    flow_run_id
        The flow run being resumed.
    task_runs
        Its task runs in creation order (:class:`daskflow.history.TaskRun` records).
    """

    def __init__(self, flow_run_id: str, task_runs: list[Any]) -> None:
        self.flow_run_id = flow_run_id
        identities = Identities()
        self._reusable: dict[Identity, dict[str, Any]] = {}
        for row in task_runs:
            identity = identities.next(row.task_name, row.name)
            if row.state.is_completed() and row.result and row.result.get("location"):
                self._reusable[identity] = {"task_run_id": row.id, "record": row.result}

    def __len__(self) -> int:
        return len(self._reusable)

    def take(self, identity: Identity) -> dict[str, Any] | None:
        """The old run's stored result for this identity, or None: run it again."""
        return self._reusable.get(identity)

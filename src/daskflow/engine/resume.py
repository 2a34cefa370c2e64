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

A flow's own retries work the same way, within one flow run: attempt
``n + 1`` reuses the stored results of the task runs attempt ``n`` completed
(:meth:`ResumePlan.of_attempt`, from the engine's runs, no store read), as
Prefect's flow retries do with persisted results.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from daskflow.states import StateType

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
    entries
        ``(task name, run name, task run id, stored result record or None)``
        for each of its task runs, in creation order; None for a run that did
        not complete with a stored result.
    """

    def __init__(
        self, flow_run_id: str, entries: Iterable[tuple[str, str, str, dict[str, Any] | None]]
    ) -> None:
        self.flow_run_id = flow_run_id
        identities = Identities()
        self._reusable: dict[Identity, dict[str, Any]] = {}
        for task_name, run_name, task_run_id, record in entries:
            identity = identities.next(task_name, run_name)
            if record and record.get("location"):
                self._reusable[identity] = {"task_run_id": task_run_id, "record": record}

    @classmethod
    def of_records(cls, flow_run_id: str, task_runs: Iterable[Any]) -> ResumePlan:
        """From a recorded flow run's task runs (:class:`daskflow.history.TaskRun`).

        Runs that tasks started (nested runs) are left out: the flow function
        does not create them, so they match none of its calls.
        """
        return cls(
            flow_run_id,
            (
                (r.task_name, r.name, r.id, r.result if r.state.is_completed() else None)
                for r in task_runs
                if getattr(r, "parent_task_run_id", None) is None
            ),
        )

    @classmethod
    def of_attempt(cls, flow_run_id: str, runs: Iterable[Any]) -> ResumePlan:
        """From the engine's runs of an attempt that ended (their final worker events)."""
        entries = []
        for run in runs:
            event = run.final_event
            record = None
            if event is not None and StateType(event[2]).is_completed and event[11]:
                record = event[11].get("result")
            entries.append((run.task.name, run.run_name, run.id, record))
        return cls(flow_run_id, entries)

    def __len__(self) -> int:
        return len(self._reusable)

    def take(self, identity: Identity) -> dict[str, Any] | None:
        """The old run's stored result for this identity, or None: run it again."""
        return self._reusable.get(identity)

"""Telling a flow run that a worker died, without asking the scheduler each time.

When a worker dies while running a task, Dask reruns the task elsewhere and
counts the death on the scheduler (``TaskState.suspicious``); the attempt on
the dead worker never reports anything. A flow run records those lost
attempts when it ends, which needs the scheduler's counts: a round trip that
a flow run on a healthy cluster should not pay.

:class:`WorkerLossWatch`, a scheduler plugin registered once per client,
publishes one event on :data:`LOSS_TOPIC` whenever a worker leaves. The
client counts them; a flow run asks the scheduler for the death counts only
when the count moved while it ran. Where the plugin cannot be registered
(daskflow not installed beside a remote scheduler), the count is unknown and
every flow run asks.
"""

from __future__ import annotations

import logging
from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin

__all__ = ["LOSS_TOPIC", "WorkerLossWatch"]

logger = logging.getLogger("daskflow.engine")

LOSS_TOPIC = "daskflow-worker-loss"


class WorkerLossWatch(SchedulerPlugin):
    """Scheduler plugin: an event on :data:`LOSS_TOPIC` per worker that leaves."""

    name = "daskflow-worker-loss"
    idempotent = True  # a second registration (another client) keeps the first

    def remove_worker(self, scheduler: Any, worker: str, **kwargs: Any) -> None:
        scheduler.log_event(LOSS_TOPIC, {"worker": worker})


def watch_worker_loss(client: Any) -> bool:
    """Register the plugin on ``client``'s scheduler; False when it cannot be."""
    try:
        client.register_plugin(WorkerLossWatch())
    except Exception:
        logger.debug("daskflow: could not register the worker-loss plugin", exc_info=True)
        return False
    return True

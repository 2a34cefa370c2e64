"""Worker processes that load daskflow's task-running code before their first task run.

A worker process of the embedded cluster (or of a process pool,
:func:`~daskflow.engine.cluster.pool_client`) starts with nothing of
daskflow but the plugins it is given. The first task run it receives would
import the attempt wrapper and the task machinery while unpickling it, on
the way to the flow's first result, while the worker had been idle since it
started. :class:`WarmWorker`, given to those workers with the other start-up
plugins, imports them on a background thread once the worker has registered
with the scheduler: the import overlaps the flow's own start (the backend's
set-up, the run store, the progress display), and the worker's start (and
with it the cluster's) does not wait for it.

An import that fails here is left for the task run that needs the module:
it fails there, with its traceback, as it would have without the plugin.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
import time
import weakref
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

__all__ = ["TASK_MODULES", "WarmWorker", "import_task_modules", "warm_when_running"]

#: What a worker imports to run a task run: the Dask task functions
#: (:mod:`daskflow.engine.chunks`, which imports the attempt wrapper) and the
#: class of the task a run's call carries (:mod:`daskflow.api.task`).
TASK_MODULES = ("daskflow.engine.chunks", "daskflow.api.task")


class WarmWorker(WorkerPlugin):
    """A worker plugin: import :data:`TASK_MODULES` in the background once the worker runs."""

    name = "daskflow-warm-worker"
    idempotent = True

    def setup(self, worker: Any) -> None:
        # the plugin is set up before the worker registers: the thread waits for that,
        # so the import does not hold up the worker's start. Python's import locks
        # make a task run that needs a module meanwhile wait for it.
        threading.Thread(
            target=warm_when_running,
            args=(weakref.ref(worker),),
            name="daskflow-warm-worker",
            daemon=True,
        ).start()


#: Seconds between two looks at a starting worker's status.
POLL_INTERVAL = 0.005

#: What a worker is before it runs; any other status but ``running`` ends the wait.
_STARTING = ("undefined", "created", "init", "starting")


def warm_when_running(worker_ref: weakref.ref[Any]) -> None:
    """Wait until the worker runs (registered), then :func:`import_task_modules`.

    A worker that closes, or fails to start, first is left as it is.
    """
    while True:
        worker = worker_ref()
        status = getattr(getattr(worker, "status", None), "name", None)
        del worker
        if status == "running":
            break
        if status not in _STARTING:
            return
        time.sleep(POLL_INTERVAL)
    import_task_modules()


def import_task_modules() -> None:
    """Import :data:`TASK_MODULES` (errors are left to the task run that needs one)."""
    for name in TASK_MODULES:
        with contextlib.suppress(Exception):
            importlib.import_module(name)

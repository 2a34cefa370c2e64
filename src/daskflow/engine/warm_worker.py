"""Worker processes that load daskflow's task-running code before their first task run.

A worker process of the embedded cluster starts with nothing of daskflow
but the plugins it is given. The first task run it receives would import
the attempt wrapper and the task machinery while unpickling it, on the way
to the flow's first result, while the worker had been idle since it
started. :class:`WarmWorker`, given to the embedded cluster's workers with
the other start-up plugins, imports them in a background thread once the
worker is set up: the import overlaps the flow's own start (the backend's
set-up, the run store, the progress display), and the worker registers with
the scheduler without waiting for it.

An import that fails here is left for the task run that needs the module:
it fails there, with its traceback, as it would have without the plugin.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

__all__ = ["TASK_MODULES", "WarmWorker"]

#: What a worker imports to run a task run: the Dask task functions
#: (:mod:`daskflow.engine.chunks`, which imports the attempt wrapper) and the
#: class of the task a run's call carries (:mod:`daskflow.api.task`).
TASK_MODULES = ("daskflow.engine.chunks", "daskflow.api.task")


class WarmWorker(WorkerPlugin):
    """A worker plugin: import :data:`TASK_MODULES` in the background at start-up."""

    name = "daskflow-warm-worker"
    idempotent = True

    def setup(self, worker: Any) -> None:
        # a thread, so the worker's start (and its registration) does not wait for it;
        # Python's import locks make a task run that needs a module meanwhile wait for it
        threading.Thread(
            target=import_task_modules, name="daskflow-warm-worker", daemon=True
        ).start()

    def teardown(self, worker: Any) -> None:
        """Nothing to undo: the modules stay imported."""


def import_task_modules() -> None:
    """Import :data:`TASK_MODULES` (errors are left to the task run that needs one)."""
    for name in TASK_MODULES:
        with contextlib.suppress(Exception):
            importlib.import_module(name)

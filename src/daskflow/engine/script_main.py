"""Worker processes that do not run the user's script again.

A Prefect user writes a flow and calls it at the bottom of ``etl.py``, with
no ``if __name__ == "__main__":`` guard, and runs ``python etl.py``. The
embedded cluster's workers are processes started by ``multiprocessing``'s
*spawn* method, and spawn prepares every child from the parent's
``__main__``: it runs ``etl.py`` again in the child (as ``__mp_main__``),
which calls the flow again, which starts another cluster inside the worker's
bootstrap, and Python stops it with hundreds of lines about
``freeze_support`` ending in ``Nanny failed to start``.

A worker does not need the script. Jupyter's ``__main__`` has no file, and
Dask users' notebooks run the same functions on the same workers: functions
and classes defined in ``__main__`` travel *by value* (``distributed``
pickles anything that refers to ``__main__`` with cloudpickle). So for the
processes a Dask nanny starts, :func:`install` leaves the main module out of
spawn's preparation data; every other field (``sys.path`` with the script's
folder first, the working directory, ``sys.argv``) still goes, so a worker
imports the script's sibling modules as before.

It replaces ``multiprocessing.spawn.get_preparation_data`` (which spawn and
forkserver look up at each start) with a wrapper, once per process, when
daskflow starts its embedded cluster. Because it is the process start that
is changed and not the cluster's start, a nanny that restarts a worker (after
a worker died) starts it the same way. Worker processes of any nanny started
in this process afterwards (a ``LocalCluster`` the user makes beside it too)
start this way; other ``multiprocessing`` processes are left as they are.

Config ``daskflow.worker-imports-main: true`` restores multiprocessing's own
behaviour: workers import the script as ``__mp_main__`` (it then needs the
guard), e.g. for a script whose module-level code sets up state that its
tasks read from the module rather than through arguments.
"""

from __future__ import annotations

import multiprocessing.spawn
import threading
from typing import Any

from daskflow import config

__all__ = ["NANNY_PROCESS_NAME", "install"]

#: The name ``distributed.nanny.WorkerProcess`` gives the processes it starts.
NANNY_PROCESS_NAME = "Dask Worker process (from Nanny)"

_MAIN_FIELDS = ("init_main_from_path", "init_main_from_name")
_lock = threading.Lock()
_installed = False


def install() -> None:
    """Start Dask nannies' worker processes without running ``__main__`` again.

    Idempotent; ``daskflow.worker-imports-main`` is read at each process
    start, so it can be changed at any time.
    """
    global _installed
    with _lock:
        if _installed:
            return
        original = multiprocessing.spawn.get_preparation_data

        def get_preparation_data(name: str) -> dict[str, Any]:
            data: dict[str, Any] = original(name)
            if name == NANNY_PROCESS_NAME and not config.get("worker-imports-main", False):
                for field in _MAIN_FIELDS:
                    data.pop(field, None)
            return data

        get_preparation_data.__wrapped__ = original  # type: ignore[attr-defined]
        multiprocessing.spawn.get_preparation_data = get_preparation_data
        _installed = True

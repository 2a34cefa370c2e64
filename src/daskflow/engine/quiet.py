"""Quiet Ctrl-C, cancellation and exit: no traceback or alarm from Dask for what daskflow does.

A terminal's Ctrl-C reaches every process of its foreground group: the
flow's process *and* the worker processes of the embedded cluster. The
flow's process stops the run and closes the cluster; a worker process has
nothing to do but wait for that, yet Python turns SIGINT into
``KeyboardInterrupt`` there and the worker dies with a traceback (and its
running tasks with "Async instruction ... CancelledError" warnings). So the
workers of the embedded cluster run :class:`QuietWorker`: SIGINT does nothing
in them (a Python handler, not ``SIG_IGN``: the commands a task starts get
the default SIGINT back at ``exec``).

What cannot be avoided at its cause is filtered, one message of one logger,
and only while the situation that makes it expected holds
(:class:`DropMessages`): a worker that closes with a task of a cancelled
flow run still running in a thread (Python cannot stop it), the nanny that
then kills that worker, a client daskflow made for an address whose
scheduler went away. A line from Dask in any other situation still shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from daskflow.engine.script_main import NANNY_PROCESS_NAME
from daskflow.signal_handlers import handling

__all__ = [
    "DropMessages",
    "QuietWorker",
    "dropping",
    "ignore_interrupt",
    "interrupts_ignored",
    "quiet_lost_scheduler",
]

#: A worker's status (``Status.name``) while it closes.
_CLOSING = frozenset({"closing", "closed", "closing_gracefully", "failed"})


class DropMessages(logging.Filter):
    """Drop the records of one logger whose message starts with one of ``prefixes``.

    Only while ``when()`` is true (always without it); a record whose
    exception is one of ``exceptions`` counts as matching too (a coroutine
    cancelled on purpose, logged with its traceback and no message).
    """

    def __init__(
        self,
        *prefixes: str,
        exceptions: tuple[type[BaseException], ...] = (),
        when: Callable[[], bool] | None = None,
    ) -> None:
        super().__init__()
        self.prefixes = prefixes
        self.exceptions = exceptions
        self.when = when

    def filter(self, record: logging.LogRecord) -> bool:
        matches = record.getMessage().startswith(self.prefixes) or (
            record.exc_info is not None and isinstance(record.exc_info[1], self.exceptions)
        )
        if not matches:
            return True
        try:
            return self.when is not None and not self.when()
        except Exception:  # a filter must never break logging
            return True


@contextlib.contextmanager
def dropping(logger_name: str, *prefixes: str) -> Iterator[None]:
    """Drop ``logger_name``'s records starting with ``prefixes`` inside the block."""
    log = logging.getLogger(logger_name)
    drop = DropMessages(*prefixes)
    log.addFilter(drop)
    try:
        yield
    finally:
        log.removeFilter(drop)


@contextlib.contextmanager
def interrupts_ignored() -> Iterator[None]:
    """Inside the block, Ctrl-C does nothing (main thread only; elsewhere it is as it was).

    For the last cleanup at exit: closing the embedded cluster can take a few
    seconds (a worker still running a task of a cancelled run is killed after
    the nanny's timeout), and a ``KeyboardInterrupt`` there would only print
    "Exception ignored in atexit callback" with its traceback and leave the
    worker processes to find out on their own.
    """
    with handling({signal.SIGINT: ignore_interrupt}):
        yield


def ignore_interrupt(number: int, frame: Any) -> None:
    """A SIGINT handler that does nothing: someone else does the shutting down."""


class QuietWorker(WorkerPlugin):
    """A worker plugin for the embedded cluster's worker processes (see the module docstring).

    In a worker process started by a nanny: Ctrl-C does nothing (the flow's
    process closes the cluster), and closing with tasks still running does
    not warn about each one. In-process workers (``processes=False``) are
    left as they are: they share the flow's process and its Ctrl-C.
    """

    name = "daskflow-quiet-worker"
    idempotent = True

    def setup(self, worker: Any) -> None:
        import multiprocessing

        if multiprocessing.current_process().name != NANNY_PROCESS_NAME:
            return
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, ignore_interrupt)

        # Worker.close() cancels the tasks still running (a thread running a
        # task of a cancelled flow run cannot be stopped); distributed warns
        # for each one. Expected then, so not shown; at any other time it is.
        def closing() -> bool:
            return str(getattr(worker.status, "name", "")) in _CLOSING

        logging.getLogger("distributed.worker.state_machine").addFilter(
            DropMessages("Async instruction for", when=closing)
        )
        # a heartbeat on its way while the cluster closes finds the scheduler gone
        # (on a loaded machine): the worker is closing anyway
        logging.getLogger("distributed.worker").addFilter(
            DropMessages("Failed to communicate with scheduler during heartbeat", when=closing)
        )

    def teardown(self, worker: Any) -> None:
        """Nothing to undo: the worker process ends."""


_address_clients: weakref.WeakSet[Any] = weakref.WeakSet()
_lock = threading.Lock()
_filtering = False


def quiet_lost_scheduler(client: Any) -> None:
    """Drop ``distributed.client``'s reconnect errors once ``client`` lost its scheduler.

    A client that loses its scheduler tries to reconnect for its timeout, then
    logs "Failed to reconnect to scheduler"; closed meanwhile (at exit), it
    logs the cancelled reconnect with its traceback. For a client daskflow made
    for an address whose cluster closed after the flow ran, neither says
    anything the user needs (a flow run that needs the scheduler fails with
    its own error). Only while one of those clients is not running: a client
    of the user's own logs them as ever the rest of the time.
    """
    global _filtering
    with _lock:
        _address_clients.add(client)
        first, _filtering = not _filtering, True
    if first:
        logging.getLogger("distributed.client").addFilter(
            DropMessages(
                "Failed to reconnect to scheduler",
                exceptions=(asyncio.CancelledError,),
                when=_an_address_client_lost_its_scheduler,
            )
        )


def _an_address_client_lost_its_scheduler() -> bool:
    return any(client.status != "running" for client in list(_address_clients))

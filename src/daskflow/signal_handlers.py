"""Signal handlers for the length of a block, in the main thread only.

Python runs signal handlers in the main thread and refuses ``signal.signal``
in any other. daskflow handles Ctrl-C and SIGTERM while ``serve`` serves,
while ``daskflow run`` runs its flow and while the embedded cluster closes at
exit, and puts the previous handlers back afterwards. Entered from another
thread (a flow called from a worker thread or a notebook's background
thread), :func:`handling` changes nothing.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

__all__ = ["SignalSafeEvent", "handling"]

Handler = Callable[[int, Any], object]


@contextlib.contextmanager
def handling(handlers: Mapping[int, Handler]) -> Iterator[None]:
    """``handlers`` (signal number to handler) inside the block; the previous ones after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, handler) for number, handler in handlers.items()}
    try:
        yield
    finally:
        for number, handler in previous.items():
            if handler is not None:  # None: not installed from Python, nothing to restore
                signal.signal(number, handler)


class SignalSafeEvent(threading.Event):
    """A ``threading.Event`` a signal handler may set while the main thread waits on it.

    A handler runs in the main thread between two bytecodes, possibly while
    that thread holds the event's lock inside ``wait()``; ``Event.set`` then
    takes the same lock again, and a plain ``Lock`` deadlocks the process (a
    ``serve`` that never stops on SIGTERM). The lock here is reentrant.
    """

    def __init__(self) -> None:
        super().__init__()
        self._cond = threading.Condition(threading.RLock())

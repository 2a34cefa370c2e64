"""Call something once the last of several events happened, on whichever thread.

Waiting for many task runs or maps is callback-driven in daskflow (a Dask
future's done callback, a map's expansion): :func:`after_all` gives the one
function to hand to each of them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["after_all"]


def after_all(count: int, callback: Callable[[], object]) -> Callable[..., None]:
    """A function to call once per event; the ``count``-th call runs ``callback()``.

    Its arguments are ignored, so it serves as any done callback.

    Examples
    --------
    >>> done = after_all(2, lambda: print("both"))
    >>> done(); done("a future")
    both
    """
    left = [count]
    lock = threading.Lock()

    def one(*_: Any) -> None:
        with lock:
            left[0] -= 1
            last = left[0] == 0
        if last:
            callback()

    return one

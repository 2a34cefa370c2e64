"""``log_prints=True``: what a task or flow prints becomes log records.

``builtins.print`` is replaced once (on first use) by a function that looks up
a context variable: inside a run with ``log_prints`` it logs to the
``daskflow.runs.prints`` logger (so the record reaches the run store), anywhere
else it is the original ``print``. A context variable, unlike redirecting
``sys.stdout``, keeps concurrent tasks in one worker's threads apart.
"""

from __future__ import annotations

import builtins
import contextlib
import contextvars
import io
import logging
from collections.abc import Iterator
from typing import Any

from daskflow.engine.run_logs import install

__all__ = ["capture_prints", "plain_prints", "printing_to_a_run"]

logger = logging.getLogger("daskflow.runs.prints")

_target: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "daskflow_print_target", default=None
)
_original_print = builtins.print


def _print(*args: Any, **kwargs: Any) -> None:
    extra = _target.get()
    if extra is None or kwargs.get("file") not in (None,):
        _original_print(*args, **kwargs)
        return
    buffer = io.StringIO()
    _original_print(*args, **{**kwargs, "file": buffer})
    logger.info(buffer.getvalue().rstrip("\n"), extra=extra)


@contextlib.contextmanager
def capture_prints(**extra: Any) -> Iterator[None]:
    """Inside this context ``print`` logs to ``daskflow.runs.prints`` with ``extra``."""
    if builtins.print is not _print:
        install()
        builtins.print = _print
    token = _target.set(extra)
    try:
        yield
    finally:
        _target.reset(token)


def printing_to_a_run() -> bool:
    """Whether ``print`` here logs to a run (a ``log_prints`` context is open)."""
    return _target.get() is not None


@contextlib.contextmanager
def plain_prints() -> Iterator[None]:
    """Inside this context ``print`` prints, even within a ``log_prints`` context.

    A task with ``log_prints=False`` run in its flow's own thread (``cluster="sync"``)
    keeps its prints out of the flow's log, as it would on a worker.
    """
    token = _target.set(None)
    try:
        yield
    finally:
        _target.reset(token)

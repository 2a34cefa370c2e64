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

__all__ = ["capture_prints"]

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

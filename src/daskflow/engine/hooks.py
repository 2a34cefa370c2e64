"""Running user hooks: every hook is called, none can break a run.

Hooks (``on_completion``, ``on_failure``) and callbacks such as
``retry_condition_fn`` go through :func:`call_safely`, which logs and swallows
``Exception`` (never ``BaseException``: Ctrl-C still stops the program).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["call_hooks", "call_safely"]

logger = logging.getLogger("daskflow.hooks")


def call_safely(fn: Callable[..., Any], *args: Any, default: Any = None, what: str = "hook") -> Any:
    """Call ``fn(*args)``; log and return ``default`` if it raises."""
    try:
        return fn(*args)
    except Exception:
        name = getattr(fn, "__qualname__", repr(fn))
        logger.exception("daskflow: %s %s raised; the run goes on", what, name)
        return default


def call_hooks(hooks: Iterable[Callable[..., Any]], obj: Any, run: Any, state: Any) -> None:
    """Call each ``hook(obj, run, state)`` once, logging any that raise."""
    for hook in hooks:
        call_safely(hook, obj, run, state)

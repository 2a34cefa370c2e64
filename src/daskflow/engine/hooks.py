"""Running user hooks: every hook is called, none can break a run.

Hooks (``on_completion``, ``on_failure``) and callbacks such as
``retry_condition_fn`` go through :func:`call_safely`, which logs and swallows
``Exception`` (never ``BaseException``: Ctrl-C still stops the program).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from daskflow.states import StateType

__all__ = ["call_hooks", "call_safely", "hooks_for"]

logger = logging.getLogger("daskflow.hooks")


def call_safely(fn: Callable[..., Any], *args: Any, default: Any = None, what: str = "hook") -> Any:
    """Call ``fn(*args)``; log and return ``default`` if it raises."""
    try:
        return fn(*args)
    except Exception:
        name = getattr(fn, "__qualname__", repr(fn))
        logger.exception("daskflow: %s %s raised; the run goes on", what, name)
        return default


def hooks_for(options: Any, state: Any) -> tuple[Callable[..., Any], ...]:
    """The hooks of a task's or flow's ``options`` that a run ending in ``state`` calls.

    ``on_completion`` for COMPLETED and CACHED, ``on_cancellation`` for
    CANCELLED, ``on_failure`` for every failed state (as
    :meth:`~daskflow.states.State.is_failed` counts them) and, for CRASHED,
    ``on_crashed`` first.
    """
    kind = state.type
    if kind is StateType.CANCELLED:
        return options.on_cancellation
    if kind is StateType.CRASHED:
        return (*options.on_crashed, *options.on_failure)
    if kind.is_failed:
        return options.on_failure
    return options.on_completion


def call_hooks(hooks: Iterable[Callable[..., Any]], obj: Any, run: Any, state: Any) -> None:
    """Call each ``hook(obj, run, state)`` once, logging any that raise."""
    for hook in hooks:
        call_safely(hook, obj, run, state)

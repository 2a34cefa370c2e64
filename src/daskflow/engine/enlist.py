"""The open transaction of this context, which task runs created here join.

:mod:`daskflow.transactions` opens one with ``with transaction():``; the
runner hands each task run it creates to it (``enlist``). A context
variable, so threads and asyncio tasks each see their own. Reading it is the
only cost a flow without transactions pays: one context-variable lookup per
task run, on the client, nothing on the workers.
"""

from __future__ import annotations

import contextvars
from typing import Any, Protocol

__all__ = ["Enlisting", "open_transaction"]


class Enlisting(Protocol):
    """What a transaction offers the runner: a place to put new task runs."""

    def enlist(self, runner: Any, run: Any) -> None: ...

    def enlist_map(self, runner: Any, mapped: Any) -> None:
        """A ``.map`` whose runs are made later, when its width is known."""


open_transaction: contextvars.ContextVar[Enlisting | None] = contextvars.ContextVar(
    "daskflow_transaction", default=None
)

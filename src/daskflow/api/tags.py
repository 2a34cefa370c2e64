"""``with tags("a", "b"):``: tags added to the task runs created inside (Prefect 3).

The tags in effect live in a context variable, so they follow the code that
opened the block (threads and asyncio tasks each see their own). A task
called inside the block runs as a copy of itself with the extra tags
(:meth:`daskflow.api.task.Task._as_called`): its records, concurrency limits
and ``runtime.task_run.tags`` all see them, and a call outside any block
pays one context-variable read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from daskflow.options import _check_tags

__all__ = ["current_tags", "tags"]

#: The tags of the ``tags(...)`` blocks the calling code is in (empty outside one).
current_tags: ContextVar[frozenset[str]] = ContextVar("daskflow_tags", default=frozenset())


@contextlib.contextmanager
def tags(*names: str) -> Iterator[frozenset[str]]:
    """Add ``names`` to the tags of every task run created inside the block.

    Blocks nest (the inner one adds to the outer one's tags); the tags a
    task was decorated with are kept.

    Parameters
    ----------
    *names
        The tags, strings.

    Raises
    ------
    ConfigurationError
        A tag is not a string.

    Examples
    --------
    >>> with tags("nightly", "db"):  # doctest: +SKIP
    ...     load(rows)
    """
    added = current_tags.get() | _check_tags(names)
    token = current_tags.set(added)
    try:
        yield added
    finally:
        current_tags.reset(token)

"""Cache key functions for ``@task(cache_key_fn=...)``.

A cache key function is called where the task run executes, before it runs,
as ``fn(context, arguments)``: ``context`` is the run's
:class:`~daskflow.engine.call.TaskRunInfo` (``context.task`` is the task),
``arguments`` the bound arguments by parameter name, with upstream values
filled in. It returns a string (runs with equal keys share one stored
result) or None (do not cache this run). A key function that raises turns
caching off for that one run, with a warning in the run's logs.
"""

from __future__ import annotations

from typing import Any

__all__ = ["task_input_hash"]


def task_input_hash(context: Any, arguments: dict[str, Any]) -> str:
    """A key from the task's source code and its inputs.

    Inputs are hashed with Dask's ``tokenize``: deterministic across
    processes and machines for pandas, NumPy and Arrow objects (by content,
    without pickling them) and for plain Python values. Editing the task's
    code changes the key, so a changed task never reuses an old result.

    Raises
    ------
    dask.tokenize.TokenizationError
        An input Dask cannot hash deterministically (a lock, an open file, an
        object without a stable pickle): the run then runs uncached, with a
        warning.

    Examples
    --------
    >>> from daskflow import task
    >>> from daskflow.cache import task_input_hash
    >>> @task(cache_key_fn=task_input_hash)
    ... def load(day: str) -> list[int]:
    ...     return [1, 2, 3]
    """
    import dask
    from dask.base import tokenize

    task = context.task
    with dask.config.set({"tokenize.ensure-deterministic": True}):
        return f"{task.name}-{tokenize(_code_of(task), arguments)}"


def _code_of(task: Any) -> Any:
    """The task's source text; its function's Dask token where there is no source."""
    source = getattr(task, "source", None)
    if source is not None:
        return source
    from dask.base import tokenize

    return tokenize(task.fn)  # a built-in, a callable object: stable within a process

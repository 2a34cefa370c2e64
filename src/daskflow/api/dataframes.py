"""``Task.map_partitions``: one tracked task run per partition of a Dask DataFrame.

The partitions are computed on the cluster (never pulled to the client) and
each becomes the first argument of one run of the task — a ``.map`` over the
partitions, so every partition gets the task's retries, timeouts and hooks,
and shows as its own task run. The runs' results are put back together as a
new Dask DataFrame with :func:`dask.dataframe.from_delayed`, built on the
runs' futures: computing it (in the flow, or later) reads them where they
are. A partition whose run failed raises that run's exception when the
DataFrame is computed.

``meta`` is inferred the way Dask's own ``map_partitions`` does it: by
calling the task's function on a small non-empty frame of the input's
dtypes; pass ``meta=`` when that cannot work.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

from daskflow.api.mapping import map_task
from daskflow.engine.attempt import TaskFailure
from daskflow.engine.runner import FlowRunner
from daskflow.engine.runs import TaskRun
from daskflow.errors import ConfigurationError
from daskflow.graph.arguments import RunRef, unmapped

__all__ = ["map_partitions"]


class _Partition(RunRef):
    """A partition already on the cluster, passed to a run like a task's future."""

    __slots__ = ("_run",)

    def __init__(self, future: Any) -> None:
        run = TaskRun(f"partition-{future.key}", future.key, None, str(future.key), None, None, [])
        run.future = future
        self._run = run


def partition_value(value: Any) -> Any:
    """A run's result as a partition: raise the run's exception if it failed."""
    if type(value) is TaskFailure:
        raise value.exception()
    return value


def _infer_meta(task: Any, ddf: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    from dask.dataframe.utils import make_meta

    try:
        return make_meta(task.fn(ddf._meta_nonempty, *args, **kwargs))
    except Exception as exc:
        raise ConfigurationError(
            f"{task.name}.map_partitions meta",
            None,
            f"a meta= argument: calling {task.name} on a sample frame failed "
            f"({type(exc).__name__}: {exc})",
        ) from exc


def _source(run: Any) -> Any:
    """Where a run's value is: its future, an item of its chunk's future, or the value."""
    import dask

    future = run.future
    if future is None:
        return run.value
    chunk = getattr(future, "chunk", None)  # a batched element (engine.chunks)
    if chunk is not None:
        return dask.delayed(operator.getitem)(chunk.future, future.pos)
    return future


def map_partitions(
    task: Any,
    runner: FlowRunner,
    ddf: Any,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    meta: Any = None,
) -> Any:
    """Run ``task`` on every partition of ``ddf``; a Dask DataFrame of the results."""
    import dask
    import dask.dataframe as dd

    if meta is None:
        meta = _infer_meta(task, ddf, args, kwargs)
    partitions = ddf.to_delayed()
    client = runner.backend.client
    if client is None:  # cluster="sync": compute the partitions here, one after another
        inputs: list[Any] = list(dask.compute(*partitions, scheduler="sync"))
    else:
        inputs = [_Partition(future) for future in client.compute(partitions)]
    mapped = map_task(
        task,
        runner,
        [inputs, *(unmapped(a) for a in args)],
        {k: unmapped(v) for k, v in kwargs.items()},
        None,
    )
    runner.flush()
    runs = [future._run for future in mapped]
    pieces = [dask.delayed(partition_value)(_source(run)) for run in runs]
    return dd.from_delayed(pieces, meta=meta, verify_meta=False)

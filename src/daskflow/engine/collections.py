"""Tasks that return Dask collections: persisted on the cluster, described in the run.

A task may build a Dask DataFrame, Array or Bag and return it lazily. The
attempt wrapper persists it where it runs: on a worker, through the worker's
client (the worker's thread slot is given back while the partitions compute),
so the data stays on the cluster and is never pulled into the driver; the
run completes when every partition is in memory, so a failing partition
fails (and retries) the task that built it. Downstream tasks receive the
persisted collection. The run's record describes it: type, partitions and
dtypes (``details["result"]["collection"]``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["describe_collection", "is_collection", "persist_collection"]


def is_collection(value: Any) -> bool:
    """True for a Dask collection (cheap for everything else: one attribute lookup)."""
    if getattr(type(value), "__dask_graph__", None) is None:
        return False
    import dask

    return bool(dask.is_dask_collection(value))


def persist_collection(value: Any) -> Any:
    """``value`` persisted on the cluster when it is a Dask collection, else itself."""
    if not is_collection(value):
        return value
    from daskflow.engine.emit import current_worker

    if current_worker() is None:  # cluster="sync" or a plain call: Dask's local scheduler
        return value.persist()
    from distributed import wait, worker_client

    with worker_client() as client:
        persisted = client.persist(value)
        wait(persisted)
    return persisted


def describe_collection(value: Any, details: dict[str, Any] | None) -> dict[str, Any] | None:
    """``details`` with a description of ``value`` added when it is a collection."""
    if not is_collection(value):
        return details
    kind = type(value)
    about: dict[str, Any] = {"type": f"{kind.__module__.split('.')[0]}.{kind.__name__}"}
    npartitions = getattr(value, "npartitions", None)
    if npartitions is None and hasattr(value, "numblocks"):
        npartitions = 1
        for blocks in value.numblocks:
            npartitions *= blocks
    if npartitions is not None:
        about["npartitions"] = int(npartitions)
    dtypes = getattr(value, "dtypes", None)
    if dtypes is not None and hasattr(dtypes, "items"):
        about["dtypes"] = {str(name): str(dtype) for name, dtype in dtypes.items()}
    elif getattr(value, "dtype", None) is not None:
        about["dtype"] = str(value.dtype)
    if hasattr(value, "shape") and not hasattr(value, "columns"):
        about["shape"] = [None if s != s else s for s in value.shape]  # NaN: unknown
    details = dict(details or {})
    details["result"] = {**details.get("result", {}), "collection": about}
    return details

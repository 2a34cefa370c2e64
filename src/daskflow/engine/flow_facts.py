"""What code running in a flow run may ask about it: id, name, flow, parameters.

A flow run's facts (:class:`FlowRunFacts`) are known in the flow's process:
:func:`opened` keeps them there while the run goes, so the flow function and
task runs executing in this process (``cluster="sync"``, an in-process
cluster) read them from memory. Task runs on worker processes cannot: the
facts are shipped to them **once per flow run**, never with each task run.
When the flow runs on a distributed cluster, :func:`opened` hands them to the
scheduler as one metadata entry (one message, not waited for, sent before
any task of the run), and removes it when the run ends. A worker asks the
scheduler only when user code reads a fact its task run's spec does not
carry, once per flow run and process (the answer is kept).

Parameters whose size passes :data:`MAX_SHIPPED_BYTES` (a large DataFrame)
stay in the flow's process: a worker reads ``parameters`` as None then.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_SHIPPED_BYTES", "FlowRunFacts", "facts_of", "opened"]

logger = logging.getLogger("daskflow.engine")

#: Parameters larger than this (by Dask's ``sizeof``) are not shipped to workers.
MAX_SHIPPED_BYTES = 1_000_000

#: How many flow runs' facts a worker keeps (the oldest are forgotten).
_REMEMBERED = 256


@dataclass(frozen=True)
class FlowRunFacts:
    """The facts of one flow run that :mod:`daskflow.runtime` shows."""

    id: str
    name: str
    flow_name: str
    parameters: dict[str, Any] | None = field(default=None, hash=False)
    scheduled_start_time: datetime.datetime | None = None
    parent_flow_run_id: str | None = None
    #: the named limits set in the flow's process by code (``concurrency_limit``), for workers
    limits: dict[str, tuple[int, float | None]] | None = field(default=None, hash=False)


_local: dict[str, FlowRunFacts] = {}  # flow runs going on in this process
_fetched: OrderedDict[str, FlowRunFacts] = OrderedDict()  # asked of the scheduler
_lock = threading.Lock()


def _metadata_key(flow_run_id: str) -> list[str]:
    return ["daskflow-flow-runs", flow_run_id]


@contextlib.contextmanager
def opened(facts: FlowRunFacts, client: Any | None) -> Iterator[None]:
    """Keep ``facts`` while the block runs; ship them to the scheduler of ``client``."""
    _local[facts.id] = facts
    shipped = client is not None and _ship(facts, client)
    try:
        yield
    finally:
        _local.pop(facts.id, None)
        if shipped and client is not None:
            _send(client, client._run_on_scheduler, _forget, facts.id)


def _ship(facts: FlowRunFacts, client: Any) -> bool:
    import cloudpickle
    from dask.sizeof import sizeof

    shipped = facts
    if facts.parameters is not None and sizeof(facts.parameters) > MAX_SHIPPED_BYTES:
        shipped = dataclasses.replace(facts, parameters=None)
    try:
        blob = cloudpickle.dumps(shipped)
    except Exception:  # a parameter that cannot be pickled: workers see no parameters
        blob = cloudpickle.dumps(dataclasses.replace(facts, parameters=None))
    return _send(client, client.scheduler.set_metadata, keys=_metadata_key(facts.id), value=blob)


def _forget(flow_run_id: str, dask_scheduler: Any = None) -> None:
    """Drop a flow run's facts from the scheduler (run there when the run ends)."""
    dask_scheduler.task_metadata.get(_metadata_key("")[0], {}).pop(flow_run_id, None)


def _send(client: Any, call: Any, *args: Any, **kwargs: Any) -> bool:
    """Make one request to the scheduler from the client's loop, not waiting for it."""
    try:
        if client.asynchronous or client.status != "running":
            return False
        client.loop.add_callback(_quietly, call, args, kwargs)
    except Exception:  # a closed client: the facts stay local
        return False
    return True


async def _quietly(call: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    try:
        await call(*args, **kwargs)
    except Exception as exc:  # the scheduler went away: nobody can ask it anyway
        logger.debug("daskflow: flow run facts: a request to the scheduler failed: %s", exc)


def facts_of(flow_run_id: str | None) -> FlowRunFacts | None:
    """The facts of flow run ``flow_run_id`` as this process can know them, or None."""
    if flow_run_id is None:
        return None
    facts = _local.get(flow_run_id) or _fetched.get(flow_run_id)
    if facts is not None:
        return facts
    facts = _ask_scheduler(flow_run_id)
    if facts is not None:
        with _lock:
            _fetched[flow_run_id] = facts
            while len(_fetched) > _REMEMBERED:
                _fetched.popitem(last=False)
    return facts


def _ask_scheduler(flow_run_id: str) -> FlowRunFacts | None:
    """The facts from the scheduler, asked from a Dask worker (None elsewhere or unknown)."""
    import pickle

    from daskflow.engine.emit import current_worker

    worker = current_worker()
    if worker is None:
        return None
    try:
        from distributed.utils import sync

        blob = sync(
            worker.loop,
            worker.scheduler.get_metadata,
            keys=_metadata_key(flow_run_id),
            default=None,
        )
        return pickle.loads(blob) if blob is not None else None
    except Exception as exc:
        logger.debug("daskflow: flow run %s: facts not available here: %s", flow_run_id, exc)
        return None

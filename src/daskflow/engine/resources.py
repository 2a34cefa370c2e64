"""Sampling the workers' CPU and memory while flow runs go on a cluster.

The panel shows worker CPU and memory for any run, also one that ended long
ago and from a process with no cluster (``daskflow dashboard``), so the flow's
own process records them with the run. One :class:`ResourceSampler` per Dask
client, one daemon thread, while at least one flow run of this process runs
on that client:

- about every :data:`SAMPLE_INTERVAL` seconds it asks the scheduler for its
  workers (``Client.scheduler_info``: one small message, whatever the number
  of task runs; the scheduler answers from what the workers' heartbeats last
  told it, ``metrics["cpu"]`` and ``metrics["memory"]``);
- it publishes one :class:`~daskflow.observers.events.ResourcesSampled` per
  flow run on the event bus, which the run store writes in the batches it
  writes anyway (no transaction of its own).

Nothing here touches a task run: the cost to a flow is one message a second
on the client's event loop, however many tasks it runs. Without an observer
on the bus nothing is sampled; a scheduler that cannot answer (the cluster
going away) costs a debug log line, and sampling goes on for the runs still
registered.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Any

from daskflow.observers.events import ResourcesSampled, bus

__all__ = ["SAMPLE_INTERVAL", "ResourceSampler", "sampler_for", "worker_metrics"]

logger = logging.getLogger("daskflow.engine")

#: Seconds between two samples of a cluster's workers.
SAMPLE_INTERVAL = 1.0

_samplers: weakref.WeakKeyDictionary[Any, ResourceSampler] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def worker_metrics(info: dict[str, Any]) -> tuple[tuple[str, float, float], ...]:
    """``(address, cpu %, memory bytes)`` per worker of a ``scheduler_info()`` answer.

    Examples
    --------
    >>> worker_metrics({"workers": {"tcp://a:1": {"metrics": {"cpu": 12.5, "memory": 2e8}}}})
    (('tcp://a:1', 12.5, 200000000.0),)
    """
    found = []
    for address, worker in sorted((info.get("workers") or {}).items()):
        metrics = worker.get("metrics") or {}
        cpu, memory = metrics.get("cpu"), metrics.get("memory")
        if cpu is not None and memory is not None:
            found.append((str(address), float(cpu), float(memory)))
    return tuple(found)


class ResourceSampler:
    """Samples one client's workers for the flow runs registered (see the module docstring).

    Parameters
    ----------
    client
        A synchronous ``distributed.Client`` (held weakly: a client that goes
        away stops the sampling).
    interval
        Seconds between samples (None: :data:`SAMPLE_INTERVAL`).
    """

    def __init__(self, client: Any, interval: float | None = None) -> None:
        self._client = weakref.ref(client)
        self.interval = SAMPLE_INTERVAL if interval is None else interval
        self._runs: dict[str, None] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._failing = False

    def register(self, flow_run_id: str) -> None:
        """Sample for ``flow_run_id`` until :meth:`unregister` (from now: one sample at once)."""
        with self._lock:
            self._runs[flow_run_id] = None
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="daskflow-resources", daemon=True
                )
                self._thread.start()

    def unregister(self, flow_run_id: str) -> None:
        with self._lock:
            self._runs.pop(flow_run_id, None)

    def _run(self) -> None:
        while True:
            with self._lock:
                runs = list(self._runs)
                if not runs:  # the next register starts a new thread
                    self._thread = None
                    return
            began = time.monotonic()
            self.sample(runs)
            time.sleep(max(0.0, self.interval - (time.monotonic() - began)))

    def sample(self, runs: list[str]) -> None:
        """Ask the scheduler once and publish the sample for each of ``runs``."""
        client = self._client()
        if client is None or not bus.active or getattr(client, "status", "") != "running":
            return
        if getattr(client, "asynchronous", False):  # its scheduler_info holds no workers
            return
        try:
            workers = worker_metrics(client.scheduler_info(n_workers=-1))
        except Exception as exc:  # the cluster closing, a scheduler gone: no sample
            if not self._failing:
                logger.debug("daskflow: sampling worker resources failed (%s)", exc)
            self._failing = True
            return
        self._failing = False
        if workers:
            now = time.time()
            bus.publish([ResourcesSampled(run, now, workers) for run in runs])


def sampler_for(client: Any) -> ResourceSampler:
    """The one sampler of ``client`` in this process."""
    with _lock:
        sampler = _samplers.get(client)
        if sampler is None:
            sampler = _samplers[client] = ResourceSampler(client)
        return sampler

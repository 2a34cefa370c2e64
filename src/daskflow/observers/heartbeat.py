"""Heartbeats: how the store tells a running flow from one whose process died.

While flow runs are active in this process, one daemon thread writes their
ids to the store every ``HEARTBEAT_INTERVAL`` seconds (one small write for all
of them, never per task). A store opened later marks RUNNING flow runs whose
last heartbeat is older than :data:`daskflow.store.base.HEARTBEAT_TIMEOUT` as
CRASHED: if this process is killed, its runs do not stay RUNNING forever.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

__all__ = ["HEARTBEAT_INTERVAL", "Heartbeat"]

logger = logging.getLogger("daskflow.observers")

#: Seconds between two heartbeats of the running flow runs of a process.
HEARTBEAT_INTERVAL = 10.0

Beat = Callable[[Sequence[str], float], None]


class Heartbeat:
    """Beats for the flow runs registered, on one daemon thread per process."""

    def __init__(self, beat: Beat, interval: float = HEARTBEAT_INTERVAL) -> None:
        self._beat = beat
        self._interval = interval
        self._active: dict[str, None] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def register(self, flow_run_id: str) -> None:
        """Beat for ``flow_run_id`` until :meth:`unregister`."""
        with self._lock:
            self._active[flow_run_id] = None
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="daskflow-heartbeat", daemon=True
                )
                self._thread.start()

    def unregister(self, flow_run_id: str) -> None:
        with self._lock:
            self._active.pop(flow_run_id, None)

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            with self._lock:
                ids = list(self._active)
            if ids:
                try:
                    self._beat(ids, time.time())
                except Exception:
                    logger.warning("daskflow: could not write heartbeats", exc_info=True)

"""Watching the flow runs of this process through the run store.

While flow runs are active in this process, one daemon thread per store

- writes their ids to the store every ``HEARTBEAT_INTERVAL`` seconds, or a
  third of ``daskflow.heartbeat-timeout`` when that is shorter (one small
  write for all of them, never per task). A store opened later marks
  RUNNING (or SCHEDULED) flow runs whose last heartbeat is older than
  ``daskflow.heartbeat-timeout`` (60 s) as CRASHED: if this process is
  killed, its runs do not stay RUNNING forever;
- reads which of them another process asked to cancel (``daskflow runs
  cancel``), every ``daskflow.cancel-poll-interval`` (1 s), one query for all,
  and hands those ids to ``on_cancel``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["HEARTBEAT_INTERVAL", "RunWatch"]

logger = logging.getLogger("daskflow.observers")

#: Seconds between two heartbeats of the running flow runs of a process.
HEARTBEAT_INTERVAL = 10.0


class RunWatch:
    """Heartbeats and cancellation requests for the flow runs registered.

    Parameters
    ----------
    store
        The run store (``heartbeat`` and ``cancel_requests``).
    on_cancel
        Called with the id of each registered flow run whose cancellation was
        requested, on the watch's thread, at every poll until it unregisters.
    heartbeat_interval, poll_interval
        Seconds between heartbeats (None: :data:`HEARTBEAT_INTERVAL`, or a third
        of ``daskflow.heartbeat-timeout`` if shorter), and between looks for
        cancellation requests.
    """

    def __init__(
        self,
        store: Any,
        on_cancel: Callable[[str], object],
        heartbeat_interval: float | None = None,
        poll_interval: float = 1.0,
    ) -> None:
        if heartbeat_interval is None:
            from daskflow import config

            timeout = config.get_seconds("heartbeat-timeout")
            heartbeat_interval = min(HEARTBEAT_INTERVAL, timeout / 3) or HEARTBEAT_INTERVAL
        self._store = store
        self._on_cancel = on_cancel
        self._heartbeat_interval = heartbeat_interval
        self._poll_interval = min(poll_interval, heartbeat_interval)
        self._active: dict[str, None] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing: set[str] = set()  # what failed and was said, until a heartbeat works

    def register(self, flow_run_id: str) -> None:
        """Watch ``flow_run_id`` until :meth:`unregister`."""
        with self._lock:
            self._active[flow_run_id] = None
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="daskflow-run-watch", daemon=True
                )
                self._thread.start()

    def unregister(self, flow_run_id: str) -> None:
        with self._lock:
            self._active.pop(flow_run_id, None)

    def _run(self) -> None:
        last_beat = time.monotonic()
        while True:
            self._wake.wait(self._poll_interval)
            with self._lock:
                ids = list(self._active)
            if not ids:
                continue
            try:
                requested = self._store.cancel_requests(ids)
            except Exception as exc:
                self._failed("read cancellation requests", exc)
                requested = []
            for flow_run_id in requested:
                try:
                    self._on_cancel(flow_run_id)
                except Exception:
                    logger.exception("daskflow: cancelling flow run %s failed", flow_run_id)
            if time.monotonic() - last_beat >= self._heartbeat_interval:
                last_beat = time.monotonic()
                try:
                    self._store.heartbeat(ids, time.time())
                except Exception as exc:
                    self._failed("write heartbeats", exc)
                else:
                    self._failing.clear()

    def _failed(self, what: str, error: Exception) -> None:
        """Say once that the store refuses ``what`` (its batches go to the journal)."""
        if what not in self._failing:
            self._failing.add(what)
            from daskflow.store.base import error_reason

            reason = error_reason(error)  # the database's own words, never the SQL
            logger.warning("daskflow: could not %s in the run store (%s)", what, reason)
        logger.debug("daskflow: could not %s", what, exc_info=True)

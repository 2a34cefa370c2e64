"""The serving side of a deployment: record it, beat, and pick up its run requests.

A :class:`DeploymentServer` lives beside serve's slot loop in the serving
process. On start it records the deployment (:mod:`daskflow.store.deployments`);
then a thread of its own, every ``daskflow.serve.poll-interval`` (0.5 s):

- writes the deployment's heartbeat every :data:`BEAT_EVERY` seconds (what
  ``daskflow deployments list`` reads to say whether a process serves it);
- claims waiting requests, at most as many as serve's ``limit`` leaves free
  (the others wait, SCHEDULED, for this process or another), and starts each
  under its recorded flow run id, with its recorded parameters, like a slot
  of the schedule; a request whose run was cancelled while it waited is
  recorded CANCELLED instead.

On stop, requests it claimed but could not start (serve was stopping) are
given back, and its heartbeat is cleared: a request made then waits for the
next serving process.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

from daskflow import config
from daskflow.errors import ConfigurationError

__all__ = ["BEAT_EVERY", "LIVE_WITHIN", "DeploymentServer", "is_served"]

logger = logging.getLogger("daskflow.serve")

#: Seconds between two heartbeats of a serving process.
BEAT_EVERY = 5.0
#: A deployment whose last heartbeat is older than this is served by no live process.
LIVE_WITHIN = 30.0
#: With no limit, at most this many requests are claimed per poll.
_UNLIMITED_CLAIM = 8


def is_served(heartbeat: float | None, now: float | None = None) -> bool:
    """Whether a live process serves a deployment whose last heartbeat is ``heartbeat``."""
    now = time.time() if now is None else now
    return heartbeat is not None and now - heartbeat < LIVE_WITHIN


class DeploymentServer:
    """Records a deployment and serves its run requests for one serve process.

    Parameters
    ----------
    server
        serve's loop object: its ``limit``, ``active`` runs, ``stopping``
        flag and ``launch_request`` are shared with the schedule's slots.
    flow, name, schedule, parameters
        What is served: the deployment ``flow.name/name``.
    store
        The SQL run store.
    """

    def __init__(
        self,
        server: Any,
        flow: Any,
        name: str,
        schedule: str | None,
        parameters: dict[str, Any],
        store: Any,
    ) -> None:
        self.server = server
        self.flow = flow
        self.name = name
        self.schedule = schedule
        self.parameters = parameters
        self.store = store
        self.id = uuid.uuid4().hex
        self.interval = config.get_seconds("serve.poll-interval")
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._said: str | None = None

    @classmethod
    def open(
        cls,
        server: Any,
        flow: Any,
        name: str | None,
        schedule: str | None,
        parameters: dict[str, Any],
        store: Any,
    ) -> DeploymentServer | None:
        """The deployment's server, recorded; None when the store cannot hold deployments.

        Raises
        ------
        ConfigurationError
            A deployment served on demand only (no schedule) with a run store
            that other processes cannot reach (``memory``, ``none``).
        """
        from daskflow.api.deployments import check_deployment_name, parameter_schema
        from daskflow.store.deployments import record_deployment

        deployment = check_deployment_name(name if name is not None else flow.name)
        if store is None or not hasattr(store, "engine"):
            if schedule is None:
                raise ConfigurationError(
                    "store",
                    getattr(store, "url", "none"),
                    "a SQLite file or database URL to serve a deployment on demand "
                    "(requests come through the run store)",
                )
            return None
        record_deployment(
            store,
            flow_name=flow.name,
            name=deployment,
            entrypoint=flow.entrypoint,
            parameters=parameters,
            parameter_schema=parameter_schema(flow.fn),
            schedule=schedule,
            server="",  # beats once started
        )
        return cls(server, flow, deployment, schedule, parameters, store)

    @property
    def full_name(self) -> str:
        return f"{self.flow.name}/{self.name}"

    def start(self) -> None:
        """Start beating and polling on a thread of its own."""
        self._thread = threading.Thread(
            target=self._loop, name="daskflow-serve-requests", daemon=True
        )
        self._thread.start()
        logger.info(
            "deployment %s takes run requests (daskflow deployments run %s)",
            self.full_name,
            self.full_name,
        )

    def stop(self) -> None:
        """Stop polling; clear this process's heartbeat."""
        from daskflow.store.deployments import stop_serving

        self._done.set()
        if self._thread is not None:
            self._thread.join()
        try:
            stop_serving(self.store, self.flow.name, self.name, self.id)
        except Exception as exc:  # the store is down: the heartbeat goes stale by itself
            self._warn(exc)

    def _loop(self) -> None:
        next_beat = 0.0
        while not self._done.is_set():
            try:
                now = time.time()
                if now >= next_beat:
                    self._beat(now)
                    next_beat = now + BEAT_EVERY
                self.poll()
                self._said = None
            except Exception as exc:  # the store is unreachable for now: try again
                self._warn(exc)
            self._done.wait(self.interval)

    def _beat(self, now: float) -> None:
        from daskflow.store.deployments import serving_beat

        serving_beat(self.store, self.flow.name, self.name, self.id, now)

    def poll(self) -> None:
        """Claim the requests there is room for, and start them (or record them CANCELLED)."""
        from daskflow.store.deployments import claim_requests, release_requests

        server = self.server
        if server.stopping is not None:
            return
        claimed = claim_requests(
            self.store, self.flow.name, self.name, self.id, self._free_places()
        )
        unstarted: list[str] = []
        for flow_run_id, cancelled in claimed:
            if cancelled:
                server.record_cancelled(flow_run_id, "cancelled before a serving process took it")
                logger.info("run request %s skipped: it was cancelled", flow_run_id[:8])
                continue
            row = self.store.get_flow_run(flow_run_id)
            parameters = row.parameters if row is not None else {}
            if not server.launch_request(flow_run_id, parameters, row.created if row else None):
                unstarted.append(flow_run_id)
        release_requests(self.store, unstarted, self.id)

    def _free_places(self) -> int:
        limit = self.server.limit
        if limit is None:
            return _UNLIMITED_CLAIM
        return max(limit - self.server.running(), 0)

    def _warn(self, exc: Exception) -> None:
        from daskflow.store.base import error_reason

        reason = error_reason(exc)
        if reason != self._said:  # once per cause, not twice a second
            logger.warning("deployment %s: the run store failed (%s)", self.full_name, reason)
            self._said = reason

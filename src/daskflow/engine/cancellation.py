"""Cancelling flow runs, from this process or from another one.

Each flow run active in this process holds a :class:`CancelToken`, linked to
its parent's (a subflow is cancelled with its parent). :func:`cancel_flow_run`
sets a token; what it stops:

- the flow run's task runs waiting or running on the cluster are cancelled
  there (one ``client.cancel`` for all of them) and recorded ``CANCELLED``;
  task runs the flow function creates afterwards end ``CANCELLED`` without
  being sent;
- the flow function stops at its next wait on a task run (``.result()`` raises
  :class:`~daskflow.errors.CancelledRunError`), and the flow run ends
  ``CANCELLED`` whatever the function does with that error; a flow run
  sleeping between retries stops at once; one with ``timeout_seconds`` stops
  waiting for its function at once.

Python cannot interrupt a thread: code already running in a task (or in the
flow function between two task calls) runs on until it returns, its result
unused — the same as a cancelled Dask future. Code that *can* stop asks
:func:`is_cancelled`: the flow's process tells every worker which flow run
was cancelled (one ``client.run``, not waited for), and a shell task
(:mod:`daskflow.shell`) kills its command when its flow run is.

Another process asks through the run store (``daskflow runs cancel``,
``FlowRun.cancel()``): a request is one column of the flow run's row, which the
flow's process reads about once a second for all its active flow runs in one
query (:class:`daskflow.observers.watch.RunWatch`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

__all__ = [
    "CancelToken",
    "cancel_flow_run",
    "close_token",
    "is_cancelled",
    "mark_cancelled",
    "open_token",
]

#: How many cancelled flow run ids a worker remembers (the oldest are forgotten).
_REMEMBERED = 10_000


class CancelToken:
    """Whether one flow run was cancelled, and what to do when it is."""

    def __init__(self, flow_run_id: str) -> None:
        self.flow_run_id = flow_run_id
        self.reason: str | None = None
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], object]] = []
        self.children: list[CancelToken] = []
        self.parent: CancelToken | None = None

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self, reason: str) -> None:
        """Cancel this flow run and its subflow runs (only the first call counts)."""
        with self._lock:
            if self._event.is_set():
                return
            self.reason = reason
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
            children = list(self.children)
        for callback in callbacks:
            callback()
        for child in children:
            child.cancel(reason)

    def on_cancel(self, callback: Callable[[], object]) -> Callable[[], None]:
        """Call ``callback()`` when cancelled (at once if already); returns an undo."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)
                return lambda: self._forget(callback)
        callback()
        return lambda: None

    def _forget(self, callback: Callable[[], object]) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._callbacks.remove(callback)

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True as soon as the run is cancelled."""
        return self._event.wait(seconds)


_tokens: dict[str, CancelToken] = {}
_tokens_lock = threading.Lock()


def open_token(flow_run_id: str, parent_id: str | None = None) -> CancelToken:
    """The token of a flow run starting in this process (a subflow's is linked to its parent)."""
    token = CancelToken(flow_run_id)
    with _tokens_lock:
        _tokens[flow_run_id] = token
        parent = _tokens.get(parent_id) if parent_id is not None else None
    if parent is not None:
        token.parent = parent
        with parent._lock:
            parent.children.append(token)
        if parent.cancelled:
            token.cancel(parent.reason or "its parent flow run was cancelled")
    return token


def close_token(flow_run_id: str) -> None:
    """Forget a flow run that ended."""
    with _tokens_lock:
        token = _tokens.pop(flow_run_id, None)
    parent = token.parent if token is not None else None
    if token is not None and parent is not None:
        with parent._lock, contextlib.suppress(ValueError):
            parent.children.remove(token)


def cancel_flow_run(flow_run_id: str, reason: str = "cancellation was requested") -> bool:
    """Cancel a flow run active in this process; False if it is not one."""
    with _tokens_lock:
        token = _tokens.get(flow_run_id)
    if token is None:
        return False
    token.cancel(reason)
    return True


# flow runs cancelled, as the flow's process told this one (a worker): their ids
_told: dict[str, None] = {}


def mark_cancelled(flow_run_id: str) -> None:
    """Note, in this process, that ``flow_run_id`` was cancelled (run on workers)."""
    with _tokens_lock:
        _told[flow_run_id] = None
        while len(_told) > _REMEMBERED:
            del _told[next(iter(_told))]


def is_cancelled(flow_run_id: str) -> bool:
    """Whether this flow run was cancelled, as far as this process knows.

    True in the flow's own process once its token is set, and on a worker
    once the flow's process told it (:func:`mark_cancelled`).
    """
    if flow_run_id in _told:
        return True
    token = _tokens.get(flow_run_id)
    return token is not None and token.cancelled

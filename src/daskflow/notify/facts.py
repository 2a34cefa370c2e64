"""What every alert says about a run, and the base of the notifiers.

:func:`payload` turns what a hook receives into one dict of facts (JSON-ready)
that every notifier sends in its own form; :class:`Notifier` makes a hook of a
``send`` method that may raise: it logs and swallows, so an alert never
breaks a run.
"""

from __future__ import annotations

import datetime
import logging
import smtplib
import urllib.error
import urllib.parse
from collections.abc import Mapping
from typing import Any

from daskflow import config
from daskflow.errors import ConfigurationError

__all__ = [
    "DEFAULT_TIMEOUT",
    "Notifier",
    "check_timeout",
    "describe",
    "headline",
    "logger",
    "panel_url",
    "payload",
]

logger = logging.getLogger("daskflow.notify")

#: Seconds a notifier waits on its server (connect, each read and write).
DEFAULT_TIMEOUT = 10.0


def panel_url(flow_run_id: str) -> str | None:
    """The address of a flow run in the daskflow panel, or None when unknown.

    Read from config ``daskflow.dashboard.url`` (the panel's base address)
    each time, on the machine that sends the alert.

    Examples
    --------
    >>> import dask
    >>> with dask.config.set({"daskflow.dashboard.url": "http://10.0.0.1:8787"}):
    ...     panel_url("3f2a9c81")
    'http://10.0.0.1:8787/daskflow?run=3f2a9c81'
    """
    base = config.get("dashboard.url")
    if not base:
        return None
    return f"{str(base).rstrip('/')}/daskflow?run={urllib.parse.quote(flow_run_id)}"


def payload(obj: Any, run: Any, state: Any) -> dict[str, Any]:
    """The facts of an alert about ``run``, as a hook receives it (JSON-ready).

    Parameters
    ----------
    obj
        The task or flow (unused beyond its ``name``, for a flow run).
    run
        A ``TaskRunInfo`` (task hooks) or ``FlowRunInfo`` (flow hooks).
    state
        The run's :class:`~daskflow.states.State`.

    Returns
    -------
    dict
        ``event`` (``"daskflow.run.failed"`` for every failed state,
        ``"daskflow.run.completed"``, ``"daskflow.run.cancelled"``),
        ``flow``, ``flow_run_id``, ``task`` and ``task_run_id`` (None for a
        flow run), ``run_name``, ``state``, ``message``, ``error_type``,
        ``error_message``, ``timestamp`` (ISO-8601, UTC) and ``panel_url``
        (None when the panel's address is not configured). ``flow`` is None
        for a task run whose view does not name its flow.

    Examples
    --------
    >>> from daskflow.engine.call import FlowRunInfo
    >>> from daskflow.states import State, StateType
    >>> run = FlowRunInfo("3f2a9c81", "etl-3f2a", "etl", {}, None, 1)
    >>> facts = payload(None, run, State(StateType.FAILED, 0.0, "boom"))
    >>> facts["event"], facts["flow"], facts["task"], facts["timestamp"]
    ('daskflow.run.failed', 'etl', None, '1970-01-01T00:00:00.000+00:00')
    """
    is_task = hasattr(run, "flow_run_id")
    flow_run_id = run.flow_run_id if is_task else run.id
    if is_task:
        flow_name = getattr(run, "flow_name", None)
    else:
        flow_name = getattr(run, "flow_name", None) or getattr(obj, "name", None)
    kind = state.type
    if kind.is_failed:
        event = "failed"
    elif kind.is_completed:
        event = "completed"
    else:
        event = kind.value.lower()
    when = datetime.datetime.fromtimestamp(state.timestamp, datetime.UTC)
    return {
        "event": f"daskflow.run.{event}",
        "flow": flow_name,
        "flow_run_id": flow_run_id,
        "task": run.task_name if is_task else None,
        "task_run_id": run.id if is_task else None,
        "run_name": run.name,
        "state": kind.value,
        "message": state.message,
        "error_type": state.error_type,
        "error_message": state.error_message,
        "timestamp": when.isoformat(timespec="milliseconds"),
        "panel_url": getattr(run, "panel_url", None) or panel_url(flow_run_id),
    }


class Notifier:
    """Base of the notifiers: a hook that sends an alert and never raises.

    Calling it as a hook (``notifier(obj, run, state)``) builds the
    :func:`payload` and hands it to :meth:`send`; any ``Exception`` on the
    way is logged on ``daskflow.notify`` and swallowed. Subclasses hold only
    picklable settings.
    """

    #: What the log calls this kind of notifier.
    kind = "notification"

    def send(self, facts: dict[str, Any], state: Any) -> None:
        """Deliver one alert (raise on failure: the caller logs it)."""
        raise NotImplementedError

    def target(self) -> str:
        """Where alerts go, safe to log."""
        return "?"

    def __call__(self, obj: Any, run: Any, state: Any) -> None:
        about = f"run {getattr(run, 'id', '?')}"
        try:
            facts = payload(obj, run, state)
            about = headline(facts)
            self.send(facts, state)
        except Exception as exc:
            logger.error(
                "daskflow.notify: %s to %s about %s failed: %s; the run goes on",
                self.kind,
                self.target(),
                about,
                describe(exc),
                exc_info=not isinstance(exc, OSError | smtplib.SMTPException),
            )


def headline(facts: Mapping[str, Any]) -> str:
    """``"etl run 3f2a9c81 FAILED: extract-2"`` (``"flow run ..."`` when the flow is unknown)."""
    flow = facts.get("flow")
    head = f"{flow} run" if flow else "flow run"
    line = f"{head} {str(facts.get('flow_run_id') or '?')[:8]} {facts.get('state')}"
    if facts.get("task"):
        line += f": {facts.get('run_name') or facts['task']}"
    return line


def describe(exc: BaseException) -> str:
    """What went wrong, in a phrase: ``"HTTP 500 Internal Server Error"``."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"could not connect ({exc.reason})"
    if isinstance(exc, TimeoutError):
        return "no answer in time (timed out)"
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else ""
        return f"the SMTP server answered {exc.smtp_code} {text}".rstrip()
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return f"the SMTP server refused the recipients {sorted(exc.recipients)}"
    if isinstance(exc, ConnectionRefusedError):
        return "could not connect (connection refused)"
    return f"{type(exc).__name__}: {exc}"


def check_timeout(value: Any) -> float:
    if not (isinstance(value, int | float) and not isinstance(value, bool) and value > 0):
        raise ConfigurationError("timeout", value, "a number of seconds above 0")
    return float(value)

"""Alerts: hooks that tell someone a run failed, by webhook or by email.

:func:`webhook` and :func:`email` build hooks for ``on_failure`` (or
``on_completion``) of tasks and flows::

    alert = notify.webhook("https://hooks.slack.com/services/...", slack=True)

    @task(on_failure=[alert])
    def extract(day: str) -> bytes: ...

    @flow(on_failure=[alert, notify.email("ops@example.com", host="smtp.example.com")])
    def etl(day: str) -> None: ...

The model, in four points:

- **One set of facts.** Every notifier describes a run the same way
  (:func:`payload`): the flow, the flow run id, the task and task run (for a
  task hook), the state, its error, the time and the link to the run in the
  daskflow panel (:func:`panel_url`). A webhook POSTs them as JSON (or as a
  Slack message), an email writes them as plain text.
- **Where it runs.** A task's hooks run where the task ran, on a Dask
  worker; a flow's hooks in the flow's process. So the notifier must reach
  the webhook or the SMTP server from there, and it travels to the worker
  pickled: a notifier is a small object holding its settings (never a
  socket or a lock), and connects anew each time it is called.
- **An alert never breaks a run.** Delivery errors (an unreachable host,
  an HTTP 500, an SMTP refusal, a timeout) are logged on the
  ``daskflow.notify`` logger, on the machine that tried, and swallowed: the
  run ends as it would have without the notifier. Every connection has a
  short ``timeout`` (10 s) so a dead endpoint cannot hold a worker long.
  Arguments are checked when the notifier is made, not when a run fails.
- **Standard library only.** :mod:`urllib.request` and :mod:`smtplib`: no
  dependency, nothing imported until a notifier is made.

Logs name a webhook by its scheme and host only: a Slack webhook's path is
its secret.
"""

from __future__ import annotations

import datetime
import json
import logging
import smtplib
import socket
import string
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from ssl import create_default_context
from typing import Any

from daskflow import config
from daskflow._version import __version__
from daskflow.errors import ConfigurationError

__all__ = [
    "EmailNotifier",
    "Notifier",
    "WebhookNotifier",
    "email",
    "panel_url",
    "payload",
    "slack_message",
    "webhook",
]

logger = logging.getLogger("daskflow.notify")

#: Seconds a notifier waits on its server (connect, each read and write).
DEFAULT_TIMEOUT = 10.0
#: Characters of an error message kept in a Slack message (a section holds 3000).
SLACK_ERROR_CHARS = 1500


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
            about = _headline(facts)
            self.send(facts, state)
        except Exception as exc:
            logger.error(
                "daskflow.notify: %s to %s about %s failed: %s; the run goes on",
                self.kind,
                self.target(),
                about,
                _describe(exc),
                exc_info=not isinstance(exc, OSError | smtplib.SMTPException),
            )


def webhook(
    url: str,
    *,
    slack: bool = False,
    headers: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> WebhookNotifier:
    """A hook that POSTs an alert as JSON to ``url``.

    Parameters
    ----------
    url
        An ``http://`` or ``https://`` address.
    slack
        Send a Slack-compatible message (``{"text": ..., "blocks": [...]}``,
        for a Slack incoming webhook or anything that speaks its format)
        instead of the :func:`payload` itself.
    headers
        Extra HTTP headers, e.g. ``{"Authorization": "Bearer ..."}``.
    timeout
        Seconds to wait to connect and for the answer.

    Returns
    -------
    WebhookNotifier
        A picklable hook for ``on_failure`` / ``on_completion`` of tasks and
        flows. An unreachable URL or an HTTP error is logged on
        ``daskflow.notify``, never raised.

    Raises
    ------
    ConfigurationError
        When ``url`` is not an http(s) URL, or ``headers`` or ``timeout`` is
        not valid.

    Examples
    --------
    >>> alert = webhook("https://hooks.slack.com/services/T0/B0/XXXX", slack=True)
    >>> alert
    webhook('https://hooks.slack.com/...', slack=True)

    >>> from daskflow import task
    >>> @task(on_failure=[alert])
    ... def extract(day: str) -> bytes: ...
    """
    return WebhookNotifier(url, slack=slack, headers=headers, timeout=timeout)


class WebhookNotifier(Notifier):
    """The hook :func:`webhook` returns: one JSON POST per call."""

    kind = "webhook"

    def __init__(
        self,
        url: str,
        *,
        slack: bool = False,
        headers: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError("url", url, "an http:// or https:// URL with a host")
        if headers is not None and not (
            isinstance(headers, Mapping)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
        ):
            raise ConfigurationError("headers", headers, "a mapping of header names to strings")
        self.url = url
        self.slack = bool(slack)
        self.headers = dict(headers or {})
        self.timeout = _timeout(timeout)

    def __repr__(self) -> str:
        extra = ", slack=True" if self.slack else ""
        return f"webhook({self.target()!r}{extra})"

    def target(self) -> str:
        return _redact(self.url)

    def send(self, facts: dict[str, Any], state: Any) -> None:
        body = slack_message(facts) if self.slack else facts
        request = urllib.request.Request(
            self.url,
            data=json.dumps(body, default=str).encode(),
            headers={
                "Content-Type": "application/json",
                "User-Agent": f"daskflow/{__version__}",
                **self.headers,
            },
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            response.read(65536)  # let the server finish; the answer itself is not used


def slack_message(facts: Mapping[str, Any]) -> dict[str, Any]:
    """A Slack message (``text`` and one mrkdwn section) for the facts of an alert.

    Examples
    --------
    >>> message = slack_message({"flow": "etl", "flow_run_id": "3f2a9c81ab", "state": "FAILED"})
    >>> message["text"]
    'daskflow: etl run 3f2a9c81 FAILED'
    >>> message["blocks"][0]["type"], message["blocks"][0]["text"]["type"]
    ('section', 'mrkdwn')
    """
    flow = facts.get("flow")
    run_id = str(facts.get("flow_run_id") or "")
    failed = str(facts.get("event")).endswith(".failed")
    icon = ":rotating_light:" if failed else ":information_source:"
    lines = [
        f"{icon} *{_mrkdwn(flow) if flow else 'flow run'}*"
        f"{' run' if flow else ''} `{_mrkdwn(run_id[:8])}` ended *{_mrkdwn(facts.get('state'))}*"
    ]
    if facts.get("task"):
        lines.append(f"*Task:* {_mrkdwn(facts.get('run_name'))} (`{_mrkdwn(facts['task'])}`)")
    elif facts.get("run_name"):
        lines.append(f"*Run:* {_mrkdwn(facts['run_name'])}")
    if facts.get("error_type") or facts.get("error_message"):
        error = str(facts.get("error_message") or "")
        if len(error) > SLACK_ERROR_CHARS:
            error = error[:SLACK_ERROR_CHARS] + "…"
        lines.append(f"*Error:* `{_mrkdwn(facts.get('error_type'))}`: {_mrkdwn(error)}")
    elif facts.get("message"):
        lines.append(f"*Message:* {_mrkdwn(facts['message'])}")
    if facts.get("timestamp"):
        lines.append(f"*When:* {_mrkdwn(facts['timestamp'])}")
    if facts.get("panel_url"):
        lines.append(f"<{facts['panel_url']}|Open the run in the daskflow panel>")
    text = f"daskflow: {_headline(facts)}"
    if facts.get("error_type"):
        text += f" ({facts['error_type']})"
    return {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}],
    }


def email(
    to: str | Sequence[str],
    *,
    sender: str | None = None,
    host: str = "localhost",
    port: int | None = None,
    username: str | None = None,
    password: str | None = None,
    starttls: bool = False,
    ssl: bool = False,
    subject: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> EmailNotifier:
    """A hook that sends a plain-text alert email over SMTP.

    Parameters
    ----------
    to
        One address or a list of them.
    sender
        The ``From`` address; default ``username`` when it is an address,
        else ``daskflow@<hostname>``.
    host, port
        The SMTP server; ``port`` defaults to 465 with ``ssl``, else 25.
    username, password
        Log in with these (both or neither), after STARTTLS when asked.
    starttls
        Upgrade the connection with STARTTLS (certificate verified).
    ssl
        Connect with TLS from the start (SMTPS); not with ``starttls``.
    subject
        A :meth:`str.format` template over the :func:`payload` fields, e.g.
        ``"{flow} failed"``; default ``"[daskflow] etl run 3f2a9c81 FAILED:
        extract-2"``.
    timeout
        Seconds to wait on the server (connect, each exchange).

    Returns
    -------
    EmailNotifier
        A picklable hook for ``on_failure`` / ``on_completion`` of tasks and
        flows. A refused or unreachable server is logged on
        ``daskflow.notify``, never raised.

    Raises
    ------
    ConfigurationError
        When an argument is not valid: no recipient, an address without
        ``@``, a username without password, ``ssl`` with ``starttls``, a
        subject naming an unknown field...

    Examples
    --------
    >>> alert = email(["ops@example.com"], host="smtp.example.com", port=587,
    ...               username="bot@example.com", password="...", starttls=True)
    >>> alert
    email(['ops@example.com'], host='smtp.example.com', port=587, starttls=True)

    >>> from daskflow import flow
    >>> @flow(on_failure=[alert])
    ... def etl(day: str) -> None: ...
    """
    return EmailNotifier(
        to,
        sender=sender,
        host=host,
        port=port,
        username=username,
        password=password,
        starttls=starttls,
        ssl=ssl,
        subject=subject,
        timeout=timeout,
    )


#: The fields of :func:`payload`, for ``subject`` templates.
_FIELDS = frozenset(
    {
        "event",
        "flow",
        "flow_run_id",
        "task",
        "task_run_id",
        "run_name",
        "state",
        "message",
        "error_type",
        "error_message",
        "timestamp",
        "panel_url",
    }
)


class EmailNotifier(Notifier):
    """The hook :func:`email` returns: one SMTP conversation per call."""

    kind = "email"

    def __init__(
        self,
        to: str | Sequence[str],
        *,
        sender: str | None = None,
        host: str = "localhost",
        port: int | None = None,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        ssl: bool = False,
        subject: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        is_list = isinstance(to, Sequence) and not isinstance(to, bytes | bytearray)
        recipients = [to] if isinstance(to, str) else list(to) if is_list else None
        if not recipients or not all(_is_address(a) for a in recipients):
            raise ConfigurationError("to", to, "an email address or a list of them")
        if sender is not None and not _is_address(sender):
            raise ConfigurationError("sender", sender, "an email address")
        if not isinstance(host, str) or not host or any(c.isspace() for c in host):
            raise ConfigurationError("host", host, "a host name")
        if port is not None and (type(port) is not int or not 0 < port < 65536):
            raise ConfigurationError("port", port, "a port number (1-65535)")
        if (username is None) != (password is None):
            given = "username" if password is None else "password"
            raise ConfigurationError(given, "...", "a username and a password together")
        if username is not None and not (isinstance(username, str) and isinstance(password, str)):
            raise ConfigurationError("username", username, "strings for username and password")
        if starttls and ssl:
            raise ConfigurationError("starttls", starttls, "starttls or ssl, not both")
        if subject is not None:
            _check_template(subject)
        self.to = recipients
        self.sender = sender
        self.host = host
        self.port = port if port is not None else (465 if ssl else 25)
        self.username = username
        self.password = password
        self.starttls = bool(starttls)
        self.ssl = bool(ssl)
        self.subject = subject
        self.timeout = _timeout(timeout)

    def __repr__(self) -> str:
        options = f", host={self.host!r}, port={self.port}"
        if self.starttls:
            options += ", starttls=True"
        if self.ssl:
            options += ", ssl=True"
        return f"email({self.to!r}{options})"

    def target(self) -> str:
        return f"{', '.join(self.to)} via {self.host}:{self.port}"

    def message(self, facts: dict[str, Any], state: Any) -> EmailMessage:
        """The email for one alert (headers and plain-text body)."""
        message = EmailMessage()
        if self.subject is None:
            subject = f"[daskflow] {_headline(facts)}"
        else:
            subject = self.subject.format_map(facts)
        message["Subject"] = " ".join(subject.split())  # one line, whatever the error said
        message["From"] = self.sender or _default_sender(self.username)
        message["To"] = ", ".join(self.to)
        message["Date"] = formatdate(localtime=True)
        message["Message-ID"] = make_msgid(domain="daskflow")
        message.set_content(_body(facts, getattr(state, "traceback", None)))
        return message

    def send(self, facts: dict[str, Any], state: Any) -> None:
        message = self.message(facts, state)
        smtp: smtplib.SMTP
        if self.ssl:
            smtp = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=create_default_context()
            )
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with smtp:
            if self.starttls:
                smtp.starttls(context=create_default_context())
            if self.username is not None and self.password is not None:
                smtp.login(self.username, self.password)
            smtp.send_message(message)


def _body(facts: Mapping[str, Any], traceback: str | None) -> str:
    """The plain-text body of an alert email."""
    rows = [("Flow", facts["flow"])] if facts.get("flow") else []
    rows.append(("Flow run", facts.get("flow_run_id")))
    if facts.get("task"):
        rows += [
            ("Task", facts["task"]),
            ("Task run", f"{facts.get('run_name')} ({facts.get('task_run_id')})"),
        ]
    else:
        rows.append(("Run name", facts.get("run_name")))
    rows += [("State", facts.get("state")), ("When", facts.get("timestamp"))]
    if facts.get("error_type"):
        rows.append(("Error", f"{facts['error_type']}: {facts.get('error_message')}"))
    elif facts.get("message"):
        rows.append(("Message", facts["message"]))
    if facts.get("panel_url"):
        rows.append(("Panel", facts["panel_url"]))
    width = max(len(label) for label, _ in rows) + 2
    lines = [f"{_headline(facts)}.", ""]
    lines += [f"{label + ':':<{width}}{value}" for label, value in rows]
    if traceback:
        lines += ["", traceback.rstrip()]
    return "\n".join(lines) + "\n"


def _headline(facts: Mapping[str, Any]) -> str:
    """``"etl run 3f2a9c81 FAILED: extract-2"`` (``"flow run ..."`` when the flow is unknown)."""
    flow = facts.get("flow")
    head = f"{flow} run" if flow else "flow run"
    line = f"{head} {str(facts.get('flow_run_id') or '?')[:8]} {facts.get('state')}"
    if facts.get("task"):
        line += f": {facts.get('run_name') or facts['task']}"
    return line


def _mrkdwn(value: Any) -> str:
    """Text escaped for Slack mrkdwn (``&``, ``<`` and ``>`` only)."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _redact(url: str) -> str:
    """``scheme://host[:port]/...``: a URL without its path, query or credentials."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    rest = "/..." if (parts.path not in ("", "/") or parts.query) else ""
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}{rest}"


def _describe(exc: BaseException) -> str:
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


def _timeout(value: Any) -> float:
    if not (isinstance(value, int | float) and not isinstance(value, bool) and value > 0):
        raise ConfigurationError("timeout", value, "a number of seconds above 0")
    return float(value)


def _check_template(subject: Any) -> None:
    expected = f"a format string over the fields {', '.join(sorted(_FIELDS))}"
    if not isinstance(subject, str):
        raise ConfigurationError("subject", subject, expected)
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(subject) if f is not None]
    except ValueError as exc:
        raise ConfigurationError("subject", subject, f"{expected} ({exc})") from None
    for field in fields:
        if field not in _FIELDS:
            raise ConfigurationError("subject", subject, f"{expected}; not {{{field}}}")


def _default_sender(username: str | None) -> str:
    if username and _is_address(username):
        return username
    return f"daskflow@{socket.gethostname() or 'localhost'}"


def _is_address(value: Any) -> bool:
    """``x@y`` without spaces (nor CR/LF: an address cannot smuggle in a header)."""
    return (
        isinstance(value, str) and "@" in value.strip("@") and not any(c.isspace() for c in value)
    )

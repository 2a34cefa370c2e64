"""Webhook alerts: the facts of a run POSTed as JSON, or as a Slack message."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from daskflow._version import __version__
from daskflow.errors import ConfigurationError
from daskflow.notify.facts import DEFAULT_TIMEOUT, Notifier, check_timeout, headline

__all__ = ["SLACK_ERROR_CHARS", "WebhookNotifier", "slack_message", "webhook"]

#: Characters of an error message kept in a Slack message (a section holds 3000).
SLACK_ERROR_CHARS = 1500


class WebhookNotifier(Notifier):
    """A hook that POSTs an alert as JSON to ``url``.

    Picklable, for ``on_failure`` / ``on_completion`` of tasks and flows;
    one POST per call. An unreachable URL or an HTTP error is logged on
    ``daskflow.notify``, never raised. Users make it as ``notify.webhook(...)``.

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
        self.timeout = check_timeout(timeout)

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
    text = f"daskflow: {headline(facts)}"
    if facts.get("error_type"):
        text += f" ({facts['error_type']})"
    return {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}],
    }


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


#: ``notify.webhook(...)``: what users call to make the hook (the class itself).
webhook = WebhookNotifier

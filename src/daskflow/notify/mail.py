"""Email alerts: the facts of a run as a plain-text message, sent over SMTP."""

from __future__ import annotations

import smtplib
import socket
import string
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from ssl import create_default_context
from typing import Any

from daskflow.errors import ConfigurationError
from daskflow.notify.facts import DEFAULT_TIMEOUT, Notifier, check_timeout, headline

__all__ = ["EmailNotifier", "email"]


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
    """A hook that sends a plain-text alert email over SMTP.

    Picklable, for ``on_failure`` / ``on_completion`` of tasks and flows;
    one SMTP conversation per call. A refused or unreachable server is
    logged on ``daskflow.notify``, never raised. Users make it as
    ``notify.email(...)``.

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
        self.timeout = check_timeout(timeout)

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
            subject = f"[daskflow] {headline(facts)}"
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
    lines = [f"{headline(facts)}.", ""]
    lines += [f"{label + ':':<{width}}{value}" for label, value in rows]
    if traceback:
        lines += ["", traceback.rstrip()]
    return "\n".join(lines) + "\n"


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


#: ``notify.email(...)``: what users call to make the hook (the class itself).
email = EmailNotifier

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

One module per part: :mod:`.facts` (what every alert says, and the
:class:`Notifier` base), :mod:`.webhooks` (JSON and Slack), :mod:`.mail`
(SMTP).
"""

from daskflow.notify.facts import DEFAULT_TIMEOUT, Notifier, panel_url, payload
from daskflow.notify.mail import EmailNotifier, email
from daskflow.notify.webhooks import WebhookNotifier, slack_message, webhook

__all__ = [
    "DEFAULT_TIMEOUT",
    "EmailNotifier",
    "Notifier",
    "WebhookNotifier",
    "email",
    "panel_url",
    "payload",
    "slack_message",
    "webhook",
]

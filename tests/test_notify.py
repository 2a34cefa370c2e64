"""daskflow.notify: webhook and email alerts, against a real HTTP and SMTP server.

The HTTP server is a ``ThreadingHTTPServer`` in a thread of the test process,
the SMTP server an aiosmtpd ``Controller``; flows run for real, on
``cluster="sync"`` and on worker processes (task hooks run there).
"""

from __future__ import annotations

import http.server
import json
import logging
import pickle
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import cloudpickle
import dask
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

import daskflow
from daskflow import flow, task
from daskflow.engine.call import FlowRunInfo, TaskRunInfo
from daskflow.errors import ConfigurationError
from daskflow.notify import email, panel_url, payload, slack_message, webhook
from daskflow.states import State, StateType
from tests.conftest import poll_for

# -- servers ---------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class HTTPReceiver:
    """What the local webhook server got, and how it answers."""

    url: str = ""
    status: int = 200
    requests: list[Received] = field(default_factory=list)
    release: threading.Event | None = None  # when set: answer only once released


class _Handler(http.server.BaseHTTPRequestHandler):
    receiver: HTTPReceiver

    def do_POST(self) -> None:
        size = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(size))
        receiver = self.server.receiver  # type: ignore[attr-defined]
        if receiver.release is not None:
            receiver.release.wait(10)
        receiver.requests.append(Received(self.path, dict(self.headers), body))
        self.send_response(receiver.status)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


@pytest.fixture
def receiver() -> Iterator[HTTPReceiver]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    got = HTTPReceiver(url=f"http://127.0.0.1:{server.server_address[1]}/hooks/T0/secret")
    server.receiver = got  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield got
    if got.release is not None:
        got.release.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mailbox:
    """An aiosmtpd handler keeping every message it accepts."""

    def __init__(self, refuse: bool = False) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[Any] = []
        self.refuse = refuse

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        message = message_from_bytes(envelope.content, policy=email_policy.default)
        self.messages.append(message)  # type: ignore[arg-type]
        return "250 Message accepted"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield box, controller.port
    controller.stop()


# -- flows -----------------------------------------------------------------------------


@task(task_run_name="extract-{day}")
def extract(day: str) -> int:
    raise ValueError(f"bad row on {day}")


@task
def fine() -> int:
    return 1


def failing_flow(name: str, cluster: Any, task_hooks=(), flow_hooks=()) -> daskflow.Flow:
    failing = extract.with_options(on_failure=list(task_hooks))

    @flow(name=name, cluster=cluster, on_failure=list(flow_hooks))
    def etl() -> int:
        fine()
        return failing("monday")

    return etl


def last_run_id(name: str) -> str:
    return daskflow.runs(flow=name, limit=1)[0].id


def notify_records(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "daskflow.notify"]


# -- webhook ---------------------------------------------------------------------------


def test_task_webhook_on_sync_posts_the_failure(receiver: HTTPReceiver) -> None:
    base = "http://dash.example:8787/"
    etl = failing_flow("notify-task-sync", "sync", task_hooks=[webhook(receiver.url)])
    with dask.config.set({"daskflow.dashboard.url": base}):
        state = etl(return_state=True)
    assert state.is_failed()
    run_id = last_run_id("notify-task-sync")
    (request,) = receiver.requests
    assert request.path == "/hooks/T0/secret"
    assert request.headers["Content-Type"] == "application/json"
    body = request.body
    assert body["event"] == "daskflow.run.failed"
    assert body["flow_run_id"] == run_id
    assert body["flow"] == "notify-task-sync"
    assert body["task"] == "extract"
    assert body["run_name"] == "extract-monday"
    assert body["task_run_id"]
    assert body["state"] == "FAILED"
    assert body["error_type"] == "ValueError"
    assert body["error_message"] == "bad row on monday"
    assert body["timestamp"].endswith("+00:00")
    assert body["panel_url"] == f"http://dash.example:8787/daskflow?run={run_id}"
    recorded = daskflow.get_run(run_id).task_runs
    assert body["task_run_id"] in {t.id for t in recorded}


def test_task_webhook_runs_on_a_worker_process(receiver: HTTPReceiver, processes_client) -> None:
    hook = webhook(receiver.url, headers={"X-Team": "data"})
    etl = failing_flow("notify-task-processes", processes_client, task_hooks=[hook])
    state = etl(return_state=True)
    assert state.is_failed()
    assert state.error_type == "ValueError"
    poll_for(lambda: len(receiver.requests) == 1)
    request = receiver.requests[0]
    assert request.headers["X-Team"] == "data"
    body = request.body
    assert body["flow_run_id"] == last_run_id("notify-task-processes")
    assert body["flow"] == "notify-task-processes"  # named on the worker too
    assert body["task"] == "extract"
    assert body["run_name"] == "extract-monday"
    assert body["state"] == "FAILED"
    assert (body["error_type"], body["error_message"]) == ("ValueError", "bad row on monday")


def test_flow_webhook_names_the_flow(receiver: HTTPReceiver) -> None:
    etl = failing_flow("notify-flow-hook", "sync", flow_hooks=[webhook(receiver.url)])
    with dask.config.set({"daskflow.dashboard.url": None}):
        etl(return_state=True)
    (request,) = receiver.requests
    body = request.body
    assert body["flow"] == "notify-flow-hook"
    assert body["flow_run_id"] == last_run_id("notify-flow-hook")
    assert body["task"] is None
    assert body["task_run_id"] is None
    assert body["state"] == "FAILED"
    assert body["error_type"] == "ValueError"
    assert body["panel_url"] is None


def test_no_alert_when_nothing_fails(receiver: HTTPReceiver) -> None:
    @flow(name="notify-fine", cluster="sync", on_failure=[webhook(receiver.url)])
    def ok() -> int:
        return fine.with_options(on_failure=[webhook(receiver.url)])()

    assert ok() == 1
    assert receiver.requests == []


def test_slack_payload(receiver: HTTPReceiver) -> None:
    hook = webhook(receiver.url, slack=True)
    etl = failing_flow("notify-slack", "sync", task_hooks=[hook], flow_hooks=[hook])
    with dask.config.set({"daskflow.dashboard.url": "http://dash:8787"}):
        etl(return_state=True)
    run_id = last_run_id("notify-slack")
    task_message, flow_message = (r.body for r in receiver.requests)
    for message in (task_message, flow_message):
        assert set(message) == {"text", "blocks"}
        (block,) = message["blocks"]
        assert block["type"] == "section"
        assert block["text"]["type"] == "mrkdwn"
        text = block["text"]["text"]
        assert run_id[:8] in text
        assert "FAILED" in text
        assert "`ValueError`: bad row on monday" in text
        assert f"<http://dash:8787/daskflow?run={run_id}|" in text
    assert "extract-monday" in task_message["blocks"][0]["text"]["text"]
    assert flow_message["text"] == f"daskflow: notify-slack run {run_id[:8]} FAILED (ValueError)"
    assert "*notify-slack*" in flow_message["blocks"][0]["text"]["text"]


def test_slack_text_is_escaped() -> None:
    facts = {
        "event": "daskflow.run.failed",
        "flow": "a<b>",
        "flow_run_id": "0123456789",
        "state": "FAILED",
        "error_type": "KeyError",
        "error_message": "<script> & co" + "x" * 5000,
    }
    text = slack_message(facts)["blocks"][0]["text"]["text"]
    assert "*a&lt;b&gt;*" in text
    assert "&lt;script&gt; &amp; co" in text
    assert len(text) < 3000


def test_unreachable_webhook_is_logged_and_the_run_fails_as_it_would(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"http://127.0.0.1:{free_port()}/hooks/T0/secret"  # nothing listens there
    etl = failing_flow(
        "notify-closed", "sync", task_hooks=[webhook(url)], flow_hooks=[webhook(url)]
    )
    with caplog.at_level(logging.WARNING):
        state = etl(return_state=True)
    assert state.type is StateType.FAILED
    assert (state.error_type, state.error_message) == ("ValueError", "bad row on monday")
    records = notify_records(caplog)
    assert len(records) == 2
    assert all("could not connect" in r and "the run goes on" in r for r in records)
    assert all("http://127.0.0.1:" in r and "secret" not in r for r in records)
    assert "extract-monday" in records[0]
    assert "notify-closed run" in records[1]
    hook_errors = [r for r in caplog.records if r.name == "daskflow.hooks"]
    assert hook_errors == []  # the notifier caught its own error


def test_http_500_is_logged(receiver: HTTPReceiver, caplog: pytest.LogCaptureFixture) -> None:
    receiver.status = 500
    etl = failing_flow("notify-500", "sync", task_hooks=[webhook(receiver.url)])
    state = etl(return_state=True)
    assert state.type is StateType.FAILED
    assert state.error_type == "ValueError"
    assert len(receiver.requests) == 1
    (record,) = notify_records(caplog)
    assert "webhook to http://127.0.0.1:" in record
    assert "HTTP 500 Internal Server Error" in record


def test_a_slow_webhook_times_out(receiver: HTTPReceiver, caplog: pytest.LogCaptureFixture) -> None:
    receiver.release = threading.Event()
    etl = failing_flow("notify-slow", "sync", flow_hooks=[webhook(receiver.url, timeout=0.2)])
    state = etl(return_state=True)
    assert state.error_type == "ValueError"
    (record,) = notify_records(caplog)
    assert "timed out" in record


def test_failing_webhook_on_a_worker_does_not_change_the_outcome(processes_client) -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    etl = failing_flow("notify-closed-processes", processes_client, task_hooks=[webhook(url)])
    state = etl(return_state=True)
    assert state.type is StateType.FAILED
    assert (state.error_type, state.error_message) == ("ValueError", "bad row on monday")
    run = daskflow.get_run(last_run_id("notify-closed-processes"))
    assert {t.task_name: t.state.type for t in run.task_runs} == {
        "fine": StateType.COMPLETED,
        "extract": StateType.FAILED,
    }


def test_a_notifier_never_raises(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(flow_run_id: str) -> str:
        raise RuntimeError("no panel here")

    monkeypatch.setattr("daskflow.notify.facts.panel_url", broken)
    run = FlowRunInfo("f" * 32, "etl-1", "etl", {}, None, 1)
    state = State(StateType.FAILED, message="boom")
    webhook("http://127.0.0.1:9/")(None, run, state)
    email("ops@example.com", port=9)(None, run, state)
    records = [r for r in caplog.records if r.name == "daskflow.notify"]
    assert len(records) == 2
    assert all("RuntimeError: no panel here" in r.getMessage() for r in records)
    assert all(r.exc_info for r in records)  # an unexpected error keeps its traceback


# -- email -----------------------------------------------------------------------------


def test_flow_email(mailbox: tuple[Mailbox, int]) -> None:
    box, port = mailbox
    alert = email(["ops@example.com", "oncall@example.com"], port=port, sender="df@example.com")
    etl = failing_flow("notify-email", "sync", flow_hooks=[alert])
    with dask.config.set({"daskflow.dashboard.url": "http://dash:8787"}):
        state = etl(return_state=True)
    assert state.is_failed()
    run_id = last_run_id("notify-email")
    (message,) = box.messages
    assert message["Subject"] == f"[daskflow] notify-email run {run_id[:8]} FAILED"
    assert message["From"] == "df@example.com"
    assert message["To"] == "ops@example.com, oncall@example.com"
    assert box.envelopes[0].rcpt_tos == ["ops@example.com", "oncall@example.com"]
    body = message.get_content()
    fields = dict(line.split(":", 1) for line in body.splitlines()[2:9])
    assert {k: v.strip() for k, v in fields.items()} == {
        "Flow": "notify-email",
        "Flow run": run_id,
        "Run name": daskflow.get_run(run_id).name,
        "State": "FAILED",
        "When": fields["When"].strip(),
        "Error": "ValueError: bad row on monday",
        "Panel": f"http://dash:8787/daskflow?run={run_id}",
    }
    assert "Traceback (most recent call last)" in body


def test_task_email_on_a_worker_with_a_subject_template(
    mailbox: tuple[Mailbox, int], processes_client
) -> None:
    box, port = mailbox
    alert = email("ops@example.com", port=port, subject="{task} {state}: {error_message}")
    etl = failing_flow("notify-email-processes", processes_client, task_hooks=[alert])
    etl(return_state=True)
    poll_for(lambda: len(box.messages) == 1)
    (message,) = box.messages
    assert message["Subject"] == "extract FAILED: bad row on monday"
    assert message["From"].startswith("daskflow@")
    body = message.get_content()
    assert last_run_id("notify-email-processes") in body
    assert "extract-monday" in body


def test_smtp_refusal_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    box = Mailbox(refuse=True)
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        alert = email("nobody@example.com", host="127.0.0.1", port=controller.port)
        state = failing_flow("notify-refused", "sync", flow_hooks=[alert])(return_state=True)
    finally:
        controller.stop()
    assert state.error_type == "ValueError"
    assert box.messages == []
    (record,) = notify_records(caplog)
    assert "email to nobody@example.com via 127.0.0.1:" in record
    assert "refused" in record


def test_unreachable_smtp_server_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    alert = email("ops@example.com", host="127.0.0.1", port=free_port(), timeout=2)
    state = failing_flow("notify-no-smtp", "sync", flow_hooks=[alert])(return_state=True)
    assert state.error_type == "ValueError"
    (record,) = notify_records(caplog)
    assert "connection refused" in record


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_starttls_and_login(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = certificate
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the notifier verifies the server
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"s3cret")

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    box = Mailbox()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=context,
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
    )
    controller.start()
    try:
        alert = email(
            "ops@example.com",
            host="127.0.0.1",
            port=controller.port,
            username="bot@example.com",
            password="s3cret",
            starttls=True,
        )
        failing_flow("notify-starttls", "sync", flow_hooks=[alert])(return_state=True)
    finally:
        controller.stop()
    assert logins == [(b"bot@example.com", b"s3cret")]
    (message,) = box.messages
    assert message["From"] == "bot@example.com"
    assert message["Subject"].startswith("[daskflow] notify-starttls run ")


# -- the pieces ------------------------------------------------------------------------


def test_payload_of_a_task_run_and_a_flow_run() -> None:
    state = State(StateType.TIMED_OUT, 1_700_000_000.5, "too slow", "TaskRunTimeout", "late")
    task_run = TaskRunInfo("t1", "extract-2", "extract", "f" * 32, 2, frozenset(), 1, {})
    facts = payload(extract, task_run, state)
    assert facts == {
        "event": "daskflow.run.failed",
        "flow": None,
        "flow_run_id": "f" * 32,
        "task": "extract",
        "task_run_id": "t1",
        "run_name": "extract-2",
        "state": "TIMED_OUT",
        "message": "too slow",
        "error_type": "TaskRunTimeout",
        "error_message": "late",
        "timestamp": "2023-11-14T22:13:20.500+00:00",
        "panel_url": None,
    }
    flow_run = FlowRunInfo("f" * 32, "etl-1", "etl", {}, None, 1)
    done = payload(None, flow_run, State(StateType.COMPLETED))
    assert (done["event"], done["flow"], done["task"]) == ("daskflow.run.completed", "etl", None)


def test_panel_url() -> None:
    with dask.config.set({"daskflow.dashboard.url": None}):
        assert panel_url("abc") is None
    with dask.config.set({"daskflow.dashboard.url": "https://dash.example/base/"}):
        assert panel_url("abc") == "https://dash.example/base/daskflow?run=abc"


def test_notifiers_pickle_and_read_well() -> None:
    hook = webhook("https://hooks.slack.com/services/T0/B0/XXXX", slack=True, timeout=3)
    again = cloudpickle.loads(cloudpickle.dumps(hook))
    assert (again.url, again.slack, again.timeout) == (hook.url, True, 3.0)
    assert repr(hook) == "webhook('https://hooks.slack.com/...', slack=True)"
    mail = email("ops@example.com", host="smtp.example.com", username="u@x.org", password="pw")
    again_mail = pickle.loads(pickle.dumps(mail))
    assert (again_mail.to, again_mail.port) == (["ops@example.com"], 25)
    assert repr(mail) == "email(['ops@example.com'], host='smtp.example.com', port=25)"
    assert "pw" not in repr(mail)
    assert email("a@b.c", ssl=True).port == 465


@pytest.mark.parametrize(
    ("make", "key"),
    [
        (lambda: webhook("ftp://example.com/hook"), "url"),
        (lambda: webhook("hooks.slack.com/services/x"), "url"),
        (lambda: webhook("http:///path-only"), "url"),
        (lambda: webhook(None), "url"),  # type: ignore[arg-type]
        (lambda: webhook("https://x.org", headers={"X": 1}), "headers"),  # type: ignore[dict-item]
        (lambda: webhook("https://x.org", timeout=0), "timeout"),
        (lambda: webhook("https://x.org", timeout="10"), "timeout"),  # type: ignore[arg-type]
        (lambda: email([]), "to"),
        (lambda: email("not-an-address"), "to"),
        (lambda: email(["ok@x.org", "bad address@x.org"]), "to"),
        (lambda: email("ok@x.org", sender="nobody"), "sender"),
        (lambda: email("ok@x.org", host=""), "host"),
        (lambda: email("ok@x.org", port=0), "port"),
        (lambda: email("ok@x.org", port=True), "port"),  # type: ignore[arg-type]
        (lambda: email("ok@x.org", username="u"), "username"),
        (lambda: email("ok@x.org", password="p"), "password"),
        (lambda: email("ok@x.org", starttls=True, ssl=True), "starttls"),
        (lambda: email("ok@x.org", subject="{flow} {nope}"), "subject"),
        (lambda: email("ok@x.org", subject="{flow"), "subject"),
        (lambda: email("ok@x.org", timeout=-1), "timeout"),
    ],
)
def test_bad_arguments(make: Any, key: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        make()
    assert info.value.key == key
    assert key in str(info.value)

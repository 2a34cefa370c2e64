"""Deployments: ``serve --name``, ``daskflow deployments list|run``, ``daskflow.run_deployment``.

Serving processes are real ``daskflow serve`` subprocesses on a real store
(a SQLite file, and PostgreSQL when ``DASKFLOW_TEST_POSTGRES_URL`` is set);
requests come from this process (``run_deployment``) and from the CLI.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import daskflow
from daskflow.api.deployments import parameter_schema
from daskflow.states import StateType
from daskflow.store import SQLStore
from daskflow.store.deployments import record_deployment
from tests.conftest import poll_for
from tests.resources.deployed import greet
from tests.test_store import SQL_BACKENDS, backend_url

DEPLOYED = Path(__file__).parent / "resources" / "deployed.py"


def cli(*args: str, store: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daskflow.cli", "--store", store, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class Serving:
    """``daskflow serve FILE:FLOW --name NAME`` in a subprocess; its output in a file."""

    def __init__(self, store: str, log: Path, target: str, *args: str) -> None:
        self.log = log
        self.out = open(log, "w")  # noqa: SIM115  (closed in stop)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daskflow.cli", "--store", store, "serve", target, *args],
            stdout=self.out,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "DASKFLOW__PROGRESS": "false"},
        )

    def output(self) -> str:
        return self.log.read_text()

    def wait_ready(self) -> None:
        def ready() -> bool:
            assert self.process.poll() is None, self.output()
            return "takes run requests" in self.output()

        poll_for(ready, timeout=90, interval=0.1)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        finally:
            self.out.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.out.close()


@pytest.fixture(params=SQL_BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with backend_url(request.param, tmp_path) as found:
        SQLStore(found).close()  # created here: the serving processes open an existing store
        yield found


def record_greet(url: str, heartbeat: float) -> None:
    """The deployment ``greet/nightly`` as a serving process records it (none serves it now)."""
    store = SQLStore(url)
    try:
        record_deployment(
            store,
            flow_name="greet",
            name="nightly",
            entrypoint=f"{DEPLOYED}:greet",
            parameters={"times": 1},
            parameter_schema=parameter_schema(greet.fn),
            schedule=None,
            server="gone",
            now=heartbeat,
        )
    finally:
        store.close()


def listed(url: str) -> list[dict[str, Any]]:
    result = cli("deployments", "list", "--json", store=url)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_two_serving_processes_start_each_request_exactly_once(url: str, tmp_path: Path) -> None:
    folder = tmp_path / "marks"
    folder.mkdir()
    args = ("--name", "shared", "-p", f"folder={folder}", "--cluster", "sync")
    servers = [
        Serving(url, tmp_path / f"serve{i}.log", f"{DEPLOYED}:mark", *args) for i in range(2)
    ]
    try:
        for server in servers:
            server.wait_ready()
        [deployment] = listed(url)
        assert deployment["name"] == "mark/shared"
        assert deployment["served"] is True
        assert deployment["parameter_schema"]["required"] == ["folder", "tag"]

        ids = [
            daskflow.run_deployment("mark/shared", {"tag": f"t{i}"}, timeout=0, store=url).id
            for i in range(14)
        ]
        by_cli = cli("deployments", "run", "mark/shared", "-p", "tag=t14", store=url)
        assert by_cli.returncode == 0, by_cli.stderr
        ids.append(by_cli.stdout.split("id ")[-1].strip())

        def all_ended() -> bool:
            return all(daskflow.get_run(i, store=url).state.is_final() for i in ids)

        poll_for(all_ended, timeout=120, interval=0.2)
        pids = {server.process.pid for server in servers}
        for i, run_id in enumerate(ids):
            run = daskflow.get_run(run_id, store=url)
            assert run.state.type is StateType.COMPLETED, run.state
            assert run.parameters == {"folder": str(folder), "tag": f"t{i}"}
            states = [t.state.type for t in run.transitions]
            assert states.count(StateType.RUNNING) == 1, states
            started_by = (folder / f"t{i}").read_text().split()
            assert len(started_by) == 1  # started once ...
            assert int(started_by[0]) in pids  # ... by one of the serving processes
        for server in servers:
            assert server.stop() == 0
    finally:
        for server in servers:
            server.kill()
    starts = [server.output().count("starting flow run") for server in servers]
    assert sum(starts) == len(ids)
    for server in servers:
        assert "Traceback" not in server.output()
        assert "WARNING" not in server.output()
    assert listed(url)[0]["served"] is False  # both stopped


def test_a_request_nobody_serves_waits_scheduled_until_a_process_serves_it(
    url: str, tmp_path: Path
) -> None:
    record_greet(url, heartbeat=time.time() - 3600)
    asked = cli("deployments", "run", "greet/nightly", "-p", "name=123", store=url)
    assert asked.returncode == 0, asked.stderr
    assert "No process serves greet/nightly now" in asked.stderr
    waiting = asked.stdout.split("id ")[-1].strip()
    cancelled = daskflow.run_deployment("greet/nightly", {"name": "x"}, timeout=0, store=url)
    assert cancelled.state.type is StateType.SCHEDULED
    cancelled.cancel(wait=None)

    SQLStore(url, heartbeat_timeout=0.001).close()  # opening marks dead runs CRASHED: not these
    assert daskflow.get_run(waiting, store=url).state.type is StateType.SCHEDULED
    [deployment] = listed(url)
    assert (deployment["served"], deployment["queued"]) == (False, 2)
    table = cli("deployments", "list", store=url)
    assert "no process serves it" in table.stdout

    server = Serving(
        url, tmp_path / "serve.log", f"{DEPLOYED}:greet", "--name", "nightly", "--cluster", "sync"
    )
    try:
        server.wait_ready()
        ran = daskflow.run_deployment(
            "greet/nightly", parameters={"name": "y", "times": 2}, store=url
        )
        assert ran.state.type is StateType.COMPLETED
        assert ran.parameters == {"name": "y", "times": 2}
        first = daskflow.get_run(waiting, store=url)
        assert first.state.type is StateType.COMPLETED
        assert first.parameters == {"name": "123", "times": 1}  # a str parameter stays text
        poll_for(
            lambda: daskflow.get_run(cancelled.id, store=url).state.type is StateType.CANCELLED,
            timeout=30,
        )
        assert daskflow.get_run(cancelled.id, store=url).start_time is None

        watched = cli("deployments", "run", "greet/nightly", "-p", "name=z", "--watch", store=url)
        assert watched.returncode == 0, watched.stderr
        assert "COMPLETED" in watched.stdout
        assert listed(url)[0]["queued"] == 0
        assert server.stop() == 0
    finally:
        server.kill()
    assert "Traceback" not in server.output()


def test_deployments_run_watch_exits_1_when_the_run_fails(tmp_path: Path) -> None:
    url = str(tmp_path / "runs.db")
    server = Serving(url, tmp_path / "serve.log", f"{DEPLOYED}:failing", "--name", "x")
    try:
        server.wait_ready()
        watched = cli("deployments", "run", "failing/x", "--watch", store=url)
        assert watched.returncode == 1
        assert "RuntimeError: fails on purpose" in watched.stderr
        assert "FAILED" in watched.stderr
        assert server.stop() == 0
    finally:
        server.kill()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["greet/nope"], "no deployment 'greet/nope'"),
        (["nightly"], "known deployments: greet/nightly"),
        (["greet/nightly", "-p", "name=x", "-p", "times=many"], "'times' expects integer"),
        (["greet/nightly", "-p", "nam=x"], "the flow's parameters are: name, times"),
        (["greet/nightly"], "parameter 'name'"),
        (["greet/nightly", "-p", "oops"], "expected KEY=VALUE"),
    ],
)
def test_bad_requests_are_usage_errors_and_record_nothing(
    tmp_path: Path, args: list[str], message: str
) -> None:
    url = str(tmp_path / "runs.db")
    record_greet(url, heartbeat=time.time())
    result = cli("deployments", "run", *args, store=url)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert daskflow.runs(store=url) == []


def test_run_deployment_refuses_bad_input_before_recording(tmp_path: Path) -> None:
    url = str(tmp_path / "runs.db")
    record_greet(url, heartbeat=time.time())
    with pytest.raises(daskflow.DeploymentNotFoundError, match="known deployments: greet/nightly"):
        daskflow.run_deployment("greet/other", store=url)
    with pytest.raises(daskflow.ParameterValidationError, match="'times' expects integer"):
        daskflow.run_deployment("greet/nightly", {"name": "a", "times": "x"}, store=url)
    assert daskflow.runs(store=url) == []


def test_serving_on_request_only_needs_a_shared_store(tmp_path: Path) -> None:
    result = cli("serve", f"{DEPLOYED}:greet", "--name", "n", "-p", "name=x", store="memory")
    assert result.returncode == 2
    assert "deployment on demand" in result.stderr


def test_the_parameter_schema_comes_from_the_type_hints() -> None:
    schema = parameter_schema(greet.fn)
    assert schema["required"] == ["name"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["name"]["type"] == "string"
    assert schema["properties"]["times"] == {
        "title": "times",
        "position": 1,
        "type": "integer",
        "default": 1,
    }


def test_concurrent_claims_take_each_request_once(url: str) -> None:
    import threading

    from daskflow.api.deployments import request_deployment_run
    from daskflow.store.deployments import claim_requests

    record_greet(url, heartbeat=time.time())
    asked = {
        request_deployment_run("greet/nightly", {"name": f"n{i}"}, store=url) for i in range(40)
    }
    claimed: dict[str, list[str]] = {}
    start = threading.Barrier(4)

    def claimer(server: str) -> None:
        store = SQLStore(url)
        mine = claimed.setdefault(server, [])
        start.wait()
        try:
            while taken := claim_requests(store, "greet", "nightly", server, limit=3):
                mine.extend(flow_run_id for flow_run_id, _ in taken)
        finally:
            store.close()

    threads = [threading.Thread(target=claimer, args=(f"s{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    every = [flow_run_id for ids in claimed.values() for flow_run_id in ids]
    assert sorted(every) == sorted(asked)  # each request claimed, and by one claimer only
    assert listed(url)[0]["queued"] == 0


def test_processes_starting_to_serve_one_deployment_at_once_record_it_once(url: str) -> None:
    import threading

    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def starts_serving() -> None:
        start.wait()
        try:
            record_greet(url, heartbeat=time.time())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=starts_serving) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []  # none found "no row yet" and then collided with another's insert
    assert [d["name"] for d in listed(url)] == ["greet/nightly"]

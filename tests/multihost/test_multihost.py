"""The same flows on a cluster of separate hosts with a shared PostgreSQL store.

Six hosts (:mod:`tests.multihost.conftest`): a scheduler, two worker hosts of
two processes each, PostgreSQL, and two hosts flows are run from, one of which
also serves the panel. Every check reads what users read: the CLI's output
and exit status, the records in the store, the panel's page.
"""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from daskflow.states import StateType
from daskflow.store.sql import SQLStore
from tests.multihost.cluster import Cluster, wait_for_workers
from tests.test_panel_browser import page_text

FLOW_FILE = """
import time

from daskflow import flow, get_run_logger, task


@task(retries=2)
def work(i, pause):
    time.sleep(pause)
    get_run_logger().info("item %d done", i)
    return i * 2


@flow
def etl(n: int = 40, pause: float = 0.2):
    return sum(f.result() for f in work.map(range(n), pause))
"""

RUN_ID = re.compile(r"started: id ([0-9a-f]{32})")
PASSWORD = "multi-host secret"


@pytest.fixture(scope="module")
def project(cluster: Cluster) -> Cluster:
    (cluster.project / "flows.py").write_text(FLOW_FILE)
    return cluster


def run_id(result: subprocess.CompletedProcess[str]) -> str:
    found = RUN_ID.search(result.stdout + result.stderr)
    assert found, result.stdout + result.stderr
    return found.group(1)


def worker_host(cluster: Cluster, worker: str | None) -> str:
    """The name of the host a worker address is on."""
    assert worker is not None
    for name, host in cluster.hosts.hosts.items():
        if worker.startswith(f"tcp://{host.address}:"):
            return name
    raise AssertionError(f"{worker} is on no known host")


def test_a_flow_runs_on_both_worker_hosts_and_every_record_is_in_postgres(project: Cluster):
    result = project.daskflow("flow", "run", "flows.py:etl", "--cluster", project.scheduler)

    assert result.returncode == 0, result.stderr
    assert "Result: 1560" in result.stdout  # sum(2 * i for i in range(40))
    store = SQLStore(project.store)
    try:
        flow_run = store.get_flow_run(run_id(result))
        assert flow_run is not None
        assert flow_run.state is StateType.COMPLETED
        task_runs = store.list_task_runs(flow_run.id)
        assert len(task_runs) == 40
        assert {t.state for t in task_runs} == {StateType.COMPLETED}
        assert {worker_host(project, t.worker) for t in task_runs} == {"w1", "w2"}
        for task_run in task_runs[:5]:
            states = [t.state for t in store.list_transitions(flow_run.id, task_run.id)]
            assert states[-2:] == [StateType.RUNNING, StateType.COMPLETED]
        logs = [r.message for r in store.list_logs(flow_run.id) if r.message.startswith("item")]
        assert sorted(logs) == sorted(f"item {i} done" for i in range(40))
    finally:
        store.close()


def test_losing_a_worker_host_mid_run_loses_no_record_and_the_flow_completes(project: Cluster):
    store = SQLStore(project.store)
    command = [
        sys.executable, "-m", "daskflow.cli", "--store", project.store, "run", "flows.py:etl",
        "-p", "n=24", "-p", "pause=1.5", "--cluster", project.scheduler,
    ]  # fmt: skip
    flow = subprocess.Popen(
        project.host("flow").command(command),
        cwd=project.project,
        env=project.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        running: list[str] = []
        while not running:  # some task runs running on w2: then the whole host goes
            assert time.monotonic() < deadline, "no task run started on w2"
            time.sleep(0.2)
            runs = store.list_flow_runs(flow="etl", limit=1)
            if runs and runs[0].state is StateType.RUNNING:
                running = [
                    t.id
                    for t in store.list_task_runs(runs[0].id, states=[StateType.RUNNING])
                    if worker_host(project, t.worker) == "w2"
                ]
        project.hosts.kill(project.workers["w2"])
        out, err = flow.communicate(timeout=180)
    finally:
        if flow.poll() is None:
            flow.kill()
        project.start_worker("w2")  # for the tests after this one

    assert flow.returncode == 0, err
    assert "Result: 552" in out  # sum(2 * i for i in range(24))
    flow_run = store.get_flow_run(run_id(subprocess.CompletedProcess([], 0, out, err)))
    assert flow_run is not None
    assert flow_run.state is StateType.COMPLETED
    task_runs = {t.id: t for t in store.list_task_runs(flow_run.id)}
    assert {t.state for t in task_runs.values()} == {StateType.COMPLETED}  # no false CRASHED
    for lost in running:  # the attempt that died with its host is recorded, then the next
        assert task_runs[lost].attempts >= 2
        assert worker_host(project, task_runs[lost].worker) == "w1"
    store.close()
    wait_for_workers(project, 4)


def test_two_flow_processes_and_the_panel_on_other_hosts_share_store_and_cluster(
    project: Cluster, browser
):
    panel = project.host("panel")
    env = {**project.env, "DASKFLOW_DASHBOARD_PASSWORD": PASSWORD}
    project.hosts.start(
        panel,
        [sys.executable, "-m", "daskflow.cli", "--store", project.store, "dashboard",
         "--host", panel.address, "--port", "8788"],
        cwd=project.project, env=env, log="dashboard.log",
    )  # fmt: skip
    page = f"http://{panel.address}:8788/daskflow"
    status, body = _get(page, password=None)
    if project.hosts.mode == "namespaces":  # beyond loopback: the password is asked
        assert status == 401
        assert "needs its password" in body
    command = [
        sys.executable, "-m", "daskflow.cli", "--store", project.store, "run", "flows.py:etl",
        "-p", "n=30", "-p", "pause=0.5", "--cluster", project.scheduler,
    ]  # fmt: skip
    flows = [
        subprocess.Popen(
            project.host(name).command(command),
            cwd=project.project,
            env=project.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("flow", "panel")
    ]
    # the panel, on another host, shows the runs live from PostgreSQL on a third
    browser.get(f"http://daskflow:{PASSWORD.replace(' ', '%20')}@{panel.address}:8788/daskflow")
    live = page_text(browser, ["etl-", "RUNNING"], timeout=60)
    results = [subprocess.CompletedProcess([], f.wait(180), *f.communicate()) for f in flows]

    store = SQLStore(project.store)
    ids = []
    for result in results:
        assert result.returncode == 0, result.stderr
        assert "Result: 870" in result.stdout
        ids.append(run_id(result))
        assert store.count_task_runs(ids[-1]) == {"work": {StateType.COMPLETED: 30}}
    store.close()
    assert "RUNNING" in live
    assert ids[0] != ids[1]
    done = page_text(browser, [i[:8] for i in ids], timeout=60)
    assert all(i[:8] in done for i in ids)


def _get(url: str, *, password: str | None) -> tuple[int, str]:
    """The status and body of ``url``; waits for a server still starting."""
    request = urllib.request.Request(url)
    if password is not None:
        token = base64.b64encode(f"daskflow:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except (ConnectionError, urllib.error.URLError):
            assert time.monotonic() < deadline, f"nothing answers at {url}"
            time.sleep(0.5)


def test_a_serve_process_on_another_host_runs_requests_on_the_shared_cluster(project: Cluster):
    env = {**project.env, "DASKFLOW__CLUSTER": project.scheduler}
    serve = project.hosts.start(
        project.host("panel"),
        [sys.executable, "-m", "daskflow.cli", "--store", project.store, "serve", "flows.py:etl",
         "--name", "nightly"],
        cwd=project.project, env=env, log="serve.log",
    )  # fmt: skip
    log = project.hosts.logs / "serve.log"
    deadline = time.monotonic() + 90
    while "takes run requests" not in log.read_text():
        assert serve.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)

    asked = project.daskflow(
        "flow", "deployments", "run", "etl/nightly", "-p", "n=12", "-p", "pause=0.1", "--watch"
    )

    assert asked.returncode == 0, asked.stdout + asked.stderr
    assert "COMPLETED" in asked.stdout
    store = SQLStore(project.store)
    [run] = store.list_flow_runs(flow="etl", limit=1)
    assert run.parameters == {"n": 12, "pause": 0.1}
    task_runs = store.list_task_runs(run.id)
    assert [t.state for t in task_runs] == [StateType.COMPLETED] * 12
    assert {worker_host(project, t.worker) for t in task_runs} <= {"w1", "w2"}
    store.close()
    project.hosts.stop(serve)
    assert serve.returncode == 0, log.read_text()
    assert "Traceback" not in log.read_text()

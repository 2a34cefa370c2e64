"""Safe by default: a flow on the embedded cluster opens no socket beyond 127.0.0.1.

Each test runs a small script in a subprocess (the embedded cluster lives
for the life of its process): it calls a flow twice on the default cluster
and then, while the cluster is still up, lists with psutil the TCP sockets
that listen in its own process and its children (worker processes, nannies).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

SCRIPT = textwrap.dedent(
    '''
    import json
    import sys
    import urllib.error
    import urllib.request

    import dask
    import psutil

    from daskflow import flow, task


    @task
    def double(x: int) -> int:
        return 2 * x


    @flow(name="safe-defaults")
    def twice(n: int) -> int:
        return sum(future.result() for future in double.map(range(n)))


    def listening() -> list[list[object]]:
        """[pid, address, port] of every TCP socket listening in this process tree."""
        me = psutil.Process()
        found = []
        for proc in [me, *me.children(recursive=True)]:
            try:
                connections = proc.net_connections(kind="tcp")
            except psutil.NoSuchProcess:
                continue
            for c in connections:
                if c.status == psutil.CONN_LISTEN:
                    found.append([proc.pid, c.laddr.ip, c.laddr.port])
        return found


    if __name__ == "__main__":
        options = json.loads(sys.argv[1])
        with dask.config.set({"daskflow.local-cluster": options}):
            assert twice(3) == 6
            assert twice(4) == 12
            from daskflow.engine.cluster import resolve_client
            from daskflow.panel.plugin import dashboard_link

            link = dashboard_link(resolve_client("local"))
            panel = link.removesuffix("/status") + "/daskflow"
            try:
                with urllib.request.urlopen(panel, timeout=30) as response:
                    status = response.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            report = {"listening": listening(), "dashboard": link, "panel": status}
            print(json.dumps(report))
    '''
)


def run_default_flow(tmp_path: Path, options: dict[str, Any]) -> dict[str, Any]:
    """Run the script on the embedded cluster with ``daskflow.local-cluster`` options."""
    script = tmp_path / "flow_and_sockets.py"
    script.write_text(SCRIPT)
    env = {
        **os.environ,
        "DASKFLOW_STORE": str(tmp_path / "runs.db"),
        "DASKFLOW__PROGRESS": "false",
    }
    env.pop("DASKFLOW_DASHBOARD_PASSWORD", None)
    result = subprocess.run(
        [sys.executable, str(script), json.dumps(options)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


@pytest.mark.parametrize(
    "options",
    [{}, {"n_workers": 2, "threads_per_worker": 1}, {"processes": False}],
    ids=["defaults", "two-worker-processes", "threads"],
)
def test_every_socket_of_a_default_flow_run_listens_on_loopback(tmp_path, options):
    report = run_default_flow(tmp_path, options)
    listening = report["listening"]
    # the scheduler (or in-process workers), its dashboard, and the workers' servers
    assert len(listening) >= 2, listening
    beyond = [entry for entry in listening if entry[1] != "127.0.0.1"]
    assert beyond == [], f"listening beyond 127.0.0.1: {beyond} (all: {listening})"
    # the dashboard, with the panel mounted, answers at the link the log names
    assert report["dashboard"].startswith("http://127.0.0.1:"), report
    assert report["panel"] == 200


def test_an_address_the_user_configures_wins(tmp_path):
    report = run_default_flow(tmp_path, {"dashboard_address": "0.0.0.0:0", "n_workers": 1})
    addresses = {entry[1] for entry in report["listening"]}
    assert "0.0.0.0" in addresses  # the dashboard, where the user asked
    assert addresses - {"0.0.0.0"} == {"127.0.0.1"}  # everything else stays on loopback
    assert report["panel"] == 404  # beyond loopback with no password: the panel is not mounted

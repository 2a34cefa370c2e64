"""Deployment latency: from `daskflow deployments run` to the run's start (target < 1.5 s).

``daskflow serve FILE.py:FLOW --name bench`` on a real subprocess (the way
users run it): a one-task flow on the embedded local cluster, recording into
a fresh SQLite store, on request only. Then, ``--runs`` times, one after the
other: the clock is read, ``daskflow deployments run bench-deploy/bench``
runs as a subprocess (a user's command: Python start, imports, validation,
the request written), and the run's ``start_time`` (its first RUNNING
transition, recorded by the serving process) is awaited. Prints the median,
90th percentile and maximum of that delay, and of its second part alone
(from the request recorded to the start: the serving process's pickup). Run::

    python benchmarks/deployments.py [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

TARGET_S = 1.5

FLOW_FILE = textwrap.dedent(
    """
    from daskflow import flow, task

    @task
    def inc(x: int) -> int:
        return x + 1

    @flow(name="bench-deploy")
    def tick(x: int = 1) -> int:
        return inc(x)
    """
)


def _summary(label: str, delays: list[float]) -> str:
    delays = sorted(delays)
    median = statistics.median(delays)
    p90 = delays[int(0.9 * (len(delays) - 1))]
    return (
        f"  {label}: median {median * 1000:.0f} ms, p90 {p90 * 1000:.0f} ms, "
        f"max {delays[-1] * 1000:.0f} ms"
    )


def _wait_served(store: str, process: subprocess.Popen[bytes]) -> None:
    """Wait until the serving process has recorded its deployment and beats."""
    from daskflow.api.deployments import sql_store
    from daskflow.store.deployments import list_deployments

    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"serve stopped or was too slow:\n{process.stderr.read()}")  # type: ignore[union-attr]
        if os.path.exists(store) and any(
            d.heartbeat is not None for d in list_deployments(sql_store(store))
        ):
            return
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="requests to measure")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    store = str(folder / "runs.db")
    (folder / "deploy_flow.py").write_text(FLOW_FILE)
    import daskflow

    base = [sys.executable, "-m", "daskflow.cli", "--store", store]
    env = {**os.environ, "DASKFLOW__PROGRESS": "false"}
    serve = [*base, "serve", f"{folder / 'deploy_flow.py'}:tick", "--name", "bench"]
    process = subprocess.Popen(serve, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    total: list[float] = []
    pickup: list[float] = []
    try:
        _wait_served(store, process)
        ask = [*base, "deployments", "run", "bench-deploy/bench", "-p", "x=2"]
        for i in range(args.runs + 1):  # the first run also waits for the cluster: dropped
            asked = time.time()
            done = subprocess.run(ask, env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise SystemExit(done.stderr)
            run_id = done.stdout.split("id ")[-1].strip()
            deadline = time.monotonic() + 120
            run = daskflow.get_run(run_id, store=store)
            while not run.state.is_final():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"serve stopped or was too slow:\n{process.stderr.read()}")  # type: ignore[union-attr]
                time.sleep(0.02)
                run = run.refresh()
            assert run.start_time is not None, run.state
            if i > 0:
                total.append(run.start_time.timestamp() - asked)
                pickup.append((run.start_time - run.created).total_seconds())
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    print(f"deployment latency over {len(total)} requests (embedded cluster, SQLite store)")
    print(_summary("deployments run -> run started", total))
    print(_summary("request recorded -> run started", pickup))
    verdict = "ok" if statistics.median(total) < TARGET_S else "MISS"
    print(f"  target: median < {TARGET_S:g} s: {verdict}")


if __name__ == "__main__":
    main()

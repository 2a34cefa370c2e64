"""Schedule latency: how late a served flow run starts after its slot (target: median < 1 s).

``daskflow serve`` on a real subprocess (the way users run it): a one-task
flow served every second on the embedded local cluster, recording into a
fresh SQLite store. After ``--runs`` runs the process gets SIGTERM and the
store is read: for each run, the delay is its ``start_time`` (its first
RUNNING transition) minus its ``scheduled_time`` (the slot). Prints the
median, 90th percentile and maximum. Run::

    python benchmarks/schedule_latency.py [--runs 20] [--interval 1]
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

TARGET_S = 1.0

FLOW_FILE = textwrap.dedent(
    """
    from daskflow import flow, task

    @task
    def inc(x: int) -> int:
        return x + 1

    @flow(name="bench-latency")
    def tick() -> int:
        return inc(1)
    """
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="completed runs to measure")
    parser.add_argument("--interval", default="1", help="the serve interval (seconds)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    store = folder / "runs.db"
    (folder / "latency_flow.py").write_text(FLOW_FILE)
    import daskflow

    command = [sys.executable, "-m", "daskflow.cli", "--store", str(store), "serve"]
    command += [f"{folder / 'latency_flow.py'}:tick", "--interval", args.interval]
    env = {**os.environ, "DASKFLOW__PROGRESS": "false"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120 + args.runs * float(args.interval) * 3
        done: list[daskflow.FlowRun] = []
        while len(done) < args.runs + 1:  # the first run also waits for the cluster: dropped
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"serve stopped or was too slow:\n{process.stderr.read()}")  # type: ignore[union-attr]
            time.sleep(0.5)
            if store.exists():
                done = daskflow.runs(state="COMPLETED", limit=None, store=str(store))
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    done.sort(key=lambda r: r.scheduled_time)  # type: ignore[arg-type,return-value]
    delays = [
        (r.start_time - r.scheduled_time).total_seconds()  # type: ignore[operator]
        for r in done[1:]
    ]
    delays.sort()
    median = statistics.median(delays)
    p90 = delays[int(0.9 * (len(delays) - 1))]
    print(
        f"schedule latency over {len(delays)} runs, interval {args.interval} s (embedded cluster)"
    )
    print(
        f"  median {median * 1000:.1f} ms, p90 {p90 * 1000:.1f} ms, max {delays[-1] * 1000:.1f} ms"
    )
    verdict = "ok" if median < TARGET_S else "MISS"
    print(f"  target: median < {TARGET_S:g} s: {verdict}")


if __name__ == "__main__":
    main()

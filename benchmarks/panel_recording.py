"""What recording the run graph and worker samples costs a flow: on and off, alternating.

One process, one ``LocalCluster(n_workers=2, threads_per_worker=1)``, a SQLite
store; the flow of ``overhead.py``'s workload (a) (10,000 mapped ``inc`` and a
reduce) runs ``--turns`` times with the recording of dependencies
(:mod:`daskflow.engine.edges`) and worker samples
(:mod:`daskflow.engine.resources`) on, and as often with both switched off
(monkeypatched), in alternating order. It prints the median wall time and the
median CPU time of this process (client, scheduler, sampler thread and store
writes: what the recording could add to), which a busy shared machine moves
less than wall time.

Run it as::

    python benchmarks/panel_recording.py [--turns 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from typing import Any


class _Off:
    def register(self, flow_run_id: str) -> None:
        pass

    def unregister(self, flow_run_id: str) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=8)
    parser.add_argument("--tasks", type=int, default=10_000)
    args = parser.parse_args()

    import dask
    from distributed import Client, LocalCluster

    import daskflow.engine.edges as edges
    import daskflow.engine.runner as runner
    from daskflow import flow, task

    @task
    def inc(x: int) -> int:
        return x + 1

    @task
    def add(xs: list[int]) -> int:
        return sum(xs)

    recording = (edges.EdgeRecorder.new_edges, runner.sampler_for)
    off: tuple[Any, Any] = (lambda self, runs: None, lambda client: _Off())
    path = os.path.join(tempfile.mkdtemp(), "runs.db")
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
        dask.config.set({"daskflow.store": path}),
    ):

        @flow(cluster=client)
        def workload(n: int) -> int:
            return add(inc.map(range(n)))

        workload(100)  # warm up
        wall: dict[str, list[float]] = {"on": [], "off": []}
        cpu: dict[str, list[float]] = {"on": [], "off": []}
        for turn in range(args.turns):
            for mode in ("on", "off") if turn % 2 == 0 else ("off", "on"):
                edges.EdgeRecorder.new_edges, runner.sampler_for = (  # type: ignore[method-assign]
                    recording if mode == "on" else off
                )
                began, began_cpu = time.perf_counter(), time.process_time()
                workload(args.tasks)
                wall[mode].append(time.perf_counter() - began)
                cpu[mode].append(time.process_time() - began_cpu)
        edges.EdgeRecorder.new_edges, runner.sampler_for = recording  # type: ignore[method-assign]
    print(f"{args.tasks:,} mapped inc + reduce, {args.turns} turns each:")
    for mode in ("on", "off"):
        print(
            f"  recording {mode:3}: wall median {statistics.median(wall[mode]):.3f} s, "
            f"CPU of this process median {statistics.median(cpu[mode]):.3f} s"
        )


if __name__ == "__main__":
    main()

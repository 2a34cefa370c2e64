"""Thirty 1-second tasks under a concurrency limit of 10: wall time (target <= 3.5 s).

On ``LocalCluster(n_workers=2, threads_per_worker=8)`` a flow maps a task
tagged ``limited`` (``time.sleep(1)``) over 30 inputs with
``daskflow.concurrency_limit("limited", 10)``: three waves of ten, so the
floor is 3 s; waiting runs start as soon as a slot frees (a ``distributed``
Semaphore: event-driven, no polling). Prefect's tag limits poll every 30 s
(>= 90 s for this workload). Also checks that at most 10 ran at once. Run::

    python benchmarks/limits.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

TARGET_S = 3.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("DASKFLOW_STORE", os.path.join(tempfile.mkdtemp(), "runs.db"))
    from distributed import Client, LocalCluster

    import daskflow

    @daskflow.task(tags=["limited"])
    def second(i: int) -> tuple[float, float]:
        start = time.time()
        time.sleep(1)
        return start, time.time()

    @daskflow.flow(name="bench-limits")
    def thirty() -> list[tuple[float, float]]:
        return second.map(range(30)).result()

    daskflow.concurrency_limit("limited", 10)
    with (
        LocalCluster(n_workers=2, threads_per_worker=8, dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        flow = thirty.with_options(cluster=client)
        walls, peaks = [], []
        for _ in range(args.repeats):
            began = time.perf_counter()
            spans = flow()
            walls.append(time.perf_counter() - began)
            edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
            running = peak = 0
            for _, step in edges:
                running += step
                peak = max(peak, running)
            peaks.append(peak)
    median = statistics.median(walls)
    print(
        f"30 x 1 s tasks, limit 10, {args.repeats} repeats: wall median {median:.2f} s "
        f"(min {min(walls):.2f}, max {max(walls):.2f}); most at once: {max(peaks)}"
    )
    print(f"target <= {TARGET_S} s: {'ok' if median <= TARGET_S else 'MISS'}")


if __name__ == "__main__":
    main()

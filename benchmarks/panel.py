"""Time one refresh of the daskflow panel with a 100,000-task-run flow run in the store.

A SQLite store in a temporary folder receives, as the engine would write
them, one flow run of ``--tasks`` task runs (100,000) across 4 task names,
plus 49 small flow runs. Then the panel's model and every view are built
(:mod:`daskflow.panel`), and one *refresh* — ``model.refresh()`` (the store
queries) followed by ``update()`` of every view — is timed ``--repeats``
times with the big run selected. The page refreshes every 500 ms: the target
is a median under 200 ms. Run it as::

    python benchmarks/panel.py
    python benchmarks/panel.py --quick        # 10,000 task runs
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

TARGET_MS = 200.0


def fill(store: object, tasks: int) -> str:
    from daskflow.observers.events import FlowRunCreated, StateChanged, TaskRunCreated
    from daskflow.states import State, StateType

    t = time.time() - 3600
    for n in range(49):  # small runs for the runs table
        fid = f"{n:032x}"
        store.write(  # type: ignore[attr-defined]
            [
                FlowRunCreated(fid, "small", f"small-{n}", {"n": n}, None, t + n),
                StateChanged(fid, None, State(StateType.COMPLETED, t + n + 1)),
            ]
        )
    big = "b" * 32
    events: list[object] = [FlowRunCreated(big, "big", "big-run", {}, None, t + 100)]
    names = ("extract", "transform", "validate", "load")
    for i in range(tasks):
        tid = f"{big[:16]}{i:016x}"
        task = names[i % len(names)]
        start = t + 100 + i * 0.001
        state = StateType.FAILED if i % 5_000 == 0 else StateType.COMPLETED
        events += [
            TaskRunCreated(tid, big, task, f"{task}-{i}", i, frozenset(), (task, i), start),
            StateChanged(big, tid, State(StateType.RUNNING, start), 1, "w1"),
            StateChanged(big, tid, State(state, start + 0.5, error_type="ValueError"), 1, "w1"),
        ]
        if len(events) >= 30_000:
            store.write(events)  # type: ignore[attr-defined]
            events = []
    store.write(events)  # type: ignore[attr-defined]
    return big


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 task runs")
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    tasks = 10_000 if args.quick else args.tasks

    from daskflow.panel.model import PanelModel
    from daskflow.panel.views import VIEWS
    from daskflow.store.sql import SQLStore

    with tempfile.TemporaryDirectory() as folder:
        store = SQLStore(str(Path(folder) / "runs.db"))
        began = time.perf_counter()
        big = fill(store, tasks)
        print(f"store filled: {tasks:,} task runs in {time.perf_counter() - began:.1f} s")
        model = PanelModel(store)
        model.select(big)
        views = [view(model) for view in VIEWS]
        timings = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            model.refresh()
            for view in views:
                view.update()
            timings.append((time.perf_counter() - start) * 1000)
        store.close()
    median = statistics.median(timings)
    verdict = "ok" if median < TARGET_MS else "MISS"
    print(f"refresh + update of every view, {tasks:,} task runs selected, {args.repeats} repeats:")
    print(f"  median {median:.1f} ms, min {min(timings):.1f} ms, max {max(timings):.1f} ms")
    print(f"  target < {TARGET_MS:.0f} ms: {verdict}")


if __name__ == "__main__":
    main()

"""Measure two small costs: the run store on a sync chain, and a cold start.

Workloads
---------
chain  A ``@flow(cluster="sync")`` calling a trivial ``@task`` ``--tasks`` times
       (1,000), each call taking the previous result. One process records into a
       SQLite file (``on``), another records nothing (``DASKFLOW_STORE=none``:
       ``off``). Each process runs ``--warmup`` untimed flow runs, then ``--runs``
       timed ones. The two kinds of process take turns, ``--repeats`` times.
cold   Whole processes, from their start to the first result on stdout (the time
       they take to shut their cluster down afterwards is not counted):

       daskflow  ``from daskflow import flow, task``; a flow of one task on the
                 default (embedded ``LocalCluster``) cluster, recording into a
                 SQLite store that exists already (as a user's usually does);
       raw       ``from distributed import Client, LocalCluster``;
                 ``client.submit(inc, 1).result()`` on ``LocalCluster()``.

       Daskflow and raw processes alternate, ``--cold`` times each, after one
       untimed process of each (to warm the file cache). daskflow's modules
       are compiled to bytecode first (``compileall``), as ``pip install``
       compiles a package's and a user's first run writes them: distributed's
       are, in site-packages. Without that, each daskflow process (and each of
       its workers) would also compile daskflow's source, about 75 ms on a
       2-core machine, wherever ``PYTHONDONTWRITEBYTECODE`` keeps processes
       from writing the bytecode they compiled.

Reading the output
------------------
For ``chain``: ``median ms`` is the median wall time of one flow run over every
timed run of that kind, ``p90 ms`` and ``max ms`` show the spikes (a full
garbage collection, a periodic write). ``ratio`` is ``on`` over ``off``, turn by
turn (the median run of the ``on`` process over that of the ``off`` process of
the same turn), median over the turns: a machine that slows down during the
benchmark moves both sides of each turn alike. Target: <= 1.5. ``mean ratio``
is the same with each process's mean run, so spikes count. The CPU time of a run
(every thread of the process: the flow's, and the store's writer) and its
ratio, taken the same way, move less than wall time on a machine that other
work keeps busy (in sync mode the writer's work is on the flow's path).

For ``cold``: the median seconds of each kind of process and daskflow minus raw
(target: < 0.1 s); then the median of the differences within each pair of
processes, which a machine whose load changes during the run moves less; then
the CPU time each process spent until its result (its own threads: client,
scheduler, store; not its worker processes), which other work on the machine
moves least.
``imported`` lists which of SQLAlchemy and pydantic the daskflow process held
by its result: neither should be there (the flow has no annotated parameter to
check, and the SQLite store is opened and written through ``sqlite3`` alone).

Timings on a small or shared machine are noisy: compare figures from one run.
``--src`` runs the child processes on another copy of daskflow's ``src/``
folder (to compare a change with the code before it, on the same machine, in
turns). Run it as::

    python benchmarks/small_costs.py                 # both, full size
    python benchmarks/small_costs.py --only chain --repeats 7
    python benchmarks/small_costs.py --only cold --cold 9
    python benchmarks/small_costs.py --src /tmp/old/src --json old.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parents[1] / "src"

CHAIN_CHILD = """
import json, os, sys, time
from daskflow import flow, task

@task
def inc(x):
    return x + 1

@flow(cluster="sync")
def chain(n):
    x = 0
    for _ in range(n):
        x = inc(x)
    return x

tasks, warmup, runs = map(int, sys.argv[1:4])
for _ in range(warmup):
    chain(tasks)
wall, cpu = [], []
for _ in range(runs):
    start, start_cpu = time.perf_counter(), time.process_time()
    assert chain(tasks) == tasks
    wall.append(time.perf_counter() - start)
    cpu.append(time.process_time() - start_cpu)
print(json.dumps([wall, cpu]))
"""

COLD_DASKFLOW = """
from daskflow import flow, task
import resource, sys

@task
def inc(x):
    return x + 1

@flow
def one():
    return inc(1)

result = one()
usage = resource.getrusage(resource.RUSAGE_SELF)
heavy = sorted(m for m in ("sqlalchemy", "pydantic") if m in sys.modules)
print(result, usage.ru_utime + usage.ru_stime, heavy, flush=True)
"""

COLD_RAW = """
from distributed import Client, LocalCluster
import resource

def inc(x):
    return x + 1

with LocalCluster() as cluster, Client(cluster) as client:
    result = client.submit(inc, 1).result()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(result, usage.ru_utime + usage.ru_stime, [], flush=True)
"""


def child_env(src: Path, store: str, home: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["DASKFLOW_STORE"] = store
    env["DASK_DASKFLOW__JOURNAL"] = os.path.join(home, "journal")
    env["DASK_DASKFLOW__RESULTS"] = os.path.join(home, "results")
    return env


def chain_process(
    env: dict[str, str], tasks: int, warmup: int, runs: int
) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds (all threads) of the timed runs of one chain process."""
    cmd = [sys.executable, "-c", CHAIN_CHILD, str(tasks), str(warmup), str(runs)]
    done = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    wall, cpu = json.loads(done.stdout.strip().splitlines()[-1])
    return wall, cpu


def bench_chain(args: argparse.Namespace, home: str) -> dict[str, Any]:
    on_env = child_env(args.src, os.path.join(home, "chain.db"), home)
    off_env = child_env(args.src, "none", home)
    on: list[list[float]] = []
    off: list[list[float]] = []
    on_cpu: list[list[float]] = []
    off_cpu: list[list[float]] = []
    for turn in range(args.repeats):
        # alternate which goes first, so neither always follows the other
        pair = [(on, on_cpu, on_env), (off, off_cpu, off_env)]
        for into, into_cpu, env in pair if turn % 2 == 0 else reversed(pair):
            wall, cpu = chain_process(env, args.tasks, args.warmup, args.runs)
            into.append(wall)
            into_cpu.append(cpu)
    return {
        "tasks": args.tasks,
        "on": summary(on),
        "off": summary(off),
        "ratio": statistics.median(turn_ratios(on, off, statistics.median)),
        "ratios": turn_ratios(on, off, statistics.median),
        "mean_ratio": statistics.median(turn_ratios(on, off, statistics.fmean)),
        "cpu_ratio": statistics.median(turn_ratios(on_cpu, off_cpu, statistics.median)),
        "cpu_on_ms": 1000 * statistics.median(t for times in on_cpu for t in times),
        "cpu_off_ms": 1000 * statistics.median(t for times in off_cpu for t in times),
    }


def turn_ratios(on: list[list[float]], off: list[list[float]], average: Any) -> list[float]:
    """``average(on) / average(off)`` of each turn's two processes."""
    return [average(a) / average(b) for a, b in zip(on, off, strict=True)]


def summary(processes: list[list[float]]) -> dict[str, float]:
    runs = sorted(t for times in processes for t in times)
    return {
        "median_ms": 1000 * statistics.median(runs),
        "p90_ms": 1000 * runs[int(0.9 * (len(runs) - 1))],
        "max_ms": 1000 * runs[-1],
    }


def cold_process(code: str, env: dict[str, str]) -> tuple[float, float, list[str]]:
    """Seconds from starting ``python -c code`` to its first line; its CPU seconds; its modules.

    The CPU seconds are the process's own (every thread, not its worker
    processes) until the result.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - start
    proc.wait(timeout=120)
    if not line.startswith("2 "):
        raise RuntimeError(f"unexpected output from a cold process: {line!r}")
    cpu, modules = line[2:].split(" ", 1)
    return elapsed, float(cpu), json.loads(modules.replace("'", '"'))


def bench_cold(args: argparse.Namespace, home: str) -> dict[str, Any]:
    env = child_env(args.src, os.path.join(home, "cold.db"), home)
    # bytecode for daskflow's modules, as an installed package (or a first run) has
    compile_all = [sys.executable, "-m", "compileall", "-q", str(args.src / "daskflow")]
    subprocess.run(compile_all, check=True, stdout=subprocess.DEVNULL)
    cold_process(COLD_DASKFLOW, env)  # untimed: creates the store, warms the file cache
    cold_process(COLD_RAW, env)
    times: dict[str, list[float]] = {"daskflow": [], "raw": []}
    cpu: dict[str, list[float]] = {"daskflow": [], "raw": []}
    imported: list[str] = []
    for _ in range(args.cold):
        for kind, code in (("daskflow", COLD_DASKFLOW), ("raw", COLD_RAW)):
            elapsed, seconds, modules = cold_process(code, env)
            times[kind].append(elapsed)
            cpu[kind].append(seconds)
            imported = modules if kind == "daskflow" else imported
    medians = {kind: statistics.median(values) for kind, values in times.items()}
    pairs = zip(times["daskflow"], times["raw"], strict=True)
    cpu_pairs = zip(cpu["daskflow"], cpu["raw"], strict=True)
    return {
        "daskflow_s": medians["daskflow"],
        "raw_s": medians["raw"],
        "difference_s": medians["daskflow"] - medians["raw"],
        "paired_difference_s": statistics.median(d - r for d, r in pairs),
        "cpu_daskflow_s": statistics.median(cpu["daskflow"]),
        "cpu_raw_s": statistics.median(cpu["raw"]),
        "cpu_paired_difference_s": statistics.median(d - r for d, r in cpu_pairs),
        "times": times,
        "cpu": cpu,
        "imports": imported,
    }


def print_report(results: dict[str, Any]) -> None:
    chain = results.get("chain")
    if chain:
        print(f"chain of {chain['tasks']} tasks, cluster='sync'")
        print(f"{'store':<6} {'median ms':>10} {'p90 ms':>8} {'max ms':>8}")
        for kind in ("off", "on"):
            row = chain[kind]
            print(
                f"{kind:<6} {row['median_ms']:>10.1f} {row['p90_ms']:>8.1f} {row['max_ms']:>8.1f}"
            )
        verdict = "ok" if chain["ratio"] <= 1.5 else "over"
        turns = ", ".join(f"{r:.2f}" for r in chain["ratios"])
        print(f"ratio on/off {chain['ratio']:.2f} (target <= 1.50: {verdict}); turns: {turns}")
        print(f"mean ratio (spikes counted) {chain['mean_ratio']:.2f}")
        print(
            f"CPU time a run, all threads: off {chain['cpu_off_ms']:.1f} ms, "
            f"on {chain['cpu_on_ms']:.1f} ms; ratio {chain['cpu_ratio']:.2f}"
        )
    cold = results.get("cold")
    if cold:
        if chain:
            print()
        verdict = "ok" if cold["difference_s"] < 0.1 else "over"
        print("cold process to first result, median s")
        print(f"daskflow {cold['daskflow_s']:.3f}  raw distributed {cold['raw_s']:.3f}")
        print(f"daskflow - raw: {cold['difference_s']:+.3f} s (target < 0.100: {verdict})")
        print(
            f"paired (each daskflow process minus the raw one after it): "
            f"{cold['paired_difference_s']:+.3f} s"
        )
        print(
            f"CPU of the process (all its threads) to the result, median s: daskflow "
            f"{cold['cpu_daskflow_s']:.3f}, raw {cold['cpu_raw_s']:.3f}; paired difference "
            f"{cold['cpu_paired_difference_s']:+.3f} s"
        )
        print(f"imported before the result: {', '.join(cold['imports']) or 'neither'}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="chain,cold", help="chain, cold or both (default)")
    parser.add_argument("--tasks", type=int, default=1000, help="tasks in the chain (1000)")
    parser.add_argument("--runs", type=int, default=20, help="timed flow runs a process (20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first (3)")
    parser.add_argument("--repeats", type=int, default=5, help="turns of on/off processes (5)")
    parser.add_argument("--cold", type=int, default=7, help="cold processes of each kind (7)")
    parser.add_argument("--src", type=Path, default=SRC, help="daskflow's src/ to run")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    only = {part.strip() for part in args.only.split(",")}
    results: dict[str, Any] = {"src": str(args.src)}
    with tempfile.TemporaryDirectory(prefix="daskflow-small-costs-") as home:
        if "chain" in only:
            results["chain"] = bench_chain(args, home)
        if "cold" in only:
            results["cold"] = bench_cold(args, home)
    print_report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

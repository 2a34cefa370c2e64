"""Measure what daskflow adds on top of raw Dask, on the same cluster.

One ``LocalCluster(n_workers=2, threads_per_worker=1)`` and one ``Client`` are
started once; every variant of every workload runs on them, in this process.

Workloads
---------
a  fan-out: ``inc(i)`` for ``i < N`` (10,000), then ``total(list)``.
b  chain: ``inc`` ``N`` times (1,000), each taking the previous result.
c  dataframes: ``P`` partitions (40) of 250,000 rows (``id`` int64, ``name``
   category of 26 letters, ``x``/``y`` float64) generated inside the task from
   a seed, filtered on ``x > 0``, grouped by ``name`` (sums of x and y, count),
   then combined (concat + groupby sum). One task per partition.
d  the fan-out of a at 100,000 (raw: futures only; one repeat by default).
e  ``nap(i)`` (0.2 s of sleep) for ``i < N`` (60), then ``total``: batching
   must never cost parallelism.

Variants
--------
daskflow  a ``@flow(cluster=client)`` of ``@task`` functions (``.map``,
          ``.submit``, direct calls), run history recorded as usual.
futures   raw Dask: ``client.map`` / ``client.submit`` with ``pure=False``.
delayed   raw Dask: ``dask.delayed`` with explicit ``dask_key_name`` (no
          tokenizing), computed with ``client.compute``.

After one small untimed warm-up each, the variants take turns (daskflow,
futures, delayed), ``--repeats`` times (default 3 for a and b, 15 for c). A
timed span is graph or flow construction plus execution until the result is
back; results must agree.

Reading the output
------------------
``median s`` is the median wall time. ``us/task`` is, for a raw variant, its
median / tasks; for daskflow, its overhead: (median - best raw median) / tasks.
``ratio`` compares daskflow with the raw variant of the best median, repeat by
repeat: the median of daskflow's time / that variant's time in the same turn,
beside its target (<= 0.20 for a, b and d, <= 1.05 for c and e).
``cpu us/task`` is the CPU time of this process (client, scheduler and run
store; the workers are processes of their own) per task, daskflow minus the
best raw variant: what the driver spends per task run. Pairing the runs of a
turn keeps a machine that slows down or speeds up during the benchmark from
moving the ratio; the plain ratio of the two medians is printed beside it.
Then the wall time of ``python -c "import daskflow"`` and of ``import
distributed`` (each minus ``python -c pass``, median of 5) and their
difference (target: < 100 ms). daskflow may import distributed lazily, so
``import daskflow, distributed`` is shown as well.

Timings on a small or shared machine are noisy: compare ratios from one run.
Flow runs are recorded in a run store: by default a new SQLite file in a
temporary folder (``--store none`` measures the engine alone). Run it as::

    python benchmarks/overhead.py --quick
    python benchmarks/overhead.py --only a,b --repeats 5 --json results.json
    python benchmarks/overhead.py --store none
    DASKFLOW__BATCH__FORCE=off python benchmarks/overhead.py --only a,b

The load average is printed before and after (figures from a loaded machine
are not comparable).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import string
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import dask
import numpy as np
import pandas as pd
from distributed import Client, LocalCluster

ROWS = 250_000
LETTERS = list(string.ascii_uppercase)
FULL = {"a": 10_000, "b": 1_000, "c": 40, "d": 100_000, "e": 60}
QUICK = {"a": 1_000, "b": 200, "c": 8, "d": 20_000, "e": 12}
WARMUP = {"a": 100, "b": 20, "c": 2, "d": 100, "e": 2}
#: Timed runs per variant by default: (c) takes a second a run and sits close to its
#: target, so it gets more runs than the long (a) and (b); raw Dask takes minutes on (d).
REPEATS = {"a": 3, "b": 3, "c": 15, "d": 1, "e": 5}
TARGETS = {"a": 0.20, "b": 0.20, "c": 1.05, "d": 0.20, "e": 1.05}
NAP = 0.2
IMPORT_TARGET_MS = 100.0

Runner = Callable[[Client, int], Any]


# -- the work itself: plain functions shared by every variant ----------------------------------
def inc(x: int) -> int:
    return x + 1


def total(xs: list[int]) -> int:
    return sum(xs)


def nap(i: int) -> int:
    time.sleep(NAP)
    return i


def partition_summary(seed: int, n_rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = np.arange(seed * n_rows, (seed + 1) * n_rows, dtype="int64")
    names = pd.Categorical.from_codes(rng.integers(0, 26, n_rows), LETTERS)
    x, y = rng.standard_normal(n_rows), rng.standard_normal(n_rows)
    df = pd.DataFrame({"id": ids, "name": names, "x": x, "y": y})
    df = df[df["x"] > 0]
    return df.groupby("name", observed=False).agg(
        x=("x", "sum"), y=("y", "sum"), count=("id", "count")
    )


def combine(parts: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(parts).groupby(level=0, observed=False).sum()


# -- raw Dask: futures -------------------------------------------------------------------------
def fan_futures(client: Client, n: int) -> int:
    return client.submit(total, client.map(inc, range(n), pure=False), pure=False).result()


def naps_futures(client: Client, n: int) -> int:
    return client.submit(total, client.map(nap, range(n), pure=False), pure=False).result()


def chain_futures(client: Client, n: int) -> int:
    fut = client.submit(inc, 0, pure=False)
    for _ in range(n - 1):
        fut = client.submit(inc, fut, pure=False)
    return fut.result()


def frames_futures(client: Client, n: int) -> pd.DataFrame:
    parts = client.map(partition_summary, range(n), n_rows=ROWS, pure=False)
    return client.submit(combine, parts, pure=False).result()


# -- raw Dask: delayed -------------------------------------------------------------------------
def fan_delayed(client: Client, n: int) -> int:
    run, d_inc = uuid.uuid4().hex, dask.delayed(inc, pure=False)
    parts = [d_inc(i, dask_key_name=f"inc-{run}-{i}") for i in range(n)]
    out = dask.delayed(total, pure=False)(parts, dask_key_name=f"total-{run}")
    return client.compute(out).result()


def chain_delayed(client: Client, n: int) -> int:
    run, d_inc = uuid.uuid4().hex, dask.delayed(inc, pure=False)
    out = d_inc(0, dask_key_name=f"inc-{run}-0")
    for i in range(1, n):
        out = d_inc(out, dask_key_name=f"inc-{run}-{i}")
    return client.compute(out).result()


def naps_delayed(client: Client, n: int) -> int:
    run, d_nap = uuid.uuid4().hex, dask.delayed(nap, pure=False)
    parts = [d_nap(i, dask_key_name=f"nap-{run}-{i}") for i in range(n)]
    out = dask.delayed(total, pure=False)(parts, dask_key_name=f"total-{run}")
    return client.compute(out).result()


def frames_delayed(client: Client, n: int) -> pd.DataFrame:
    run, d_part = uuid.uuid4().hex, dask.delayed(partition_summary, pure=False)
    parts = [d_part(i, ROWS, dask_key_name=f"partition_summary-{run}-{i}") for i in range(n)]
    out = dask.delayed(combine, pure=False)(parts, dask_key_name=f"combine-{run}")
    return client.compute(out).result()


# -- daskflow ----------------------------------------------------------------------------------
def import_daskflow() -> ModuleType:
    """Import daskflow, falling back to this checkout's ``src/`` when it is not installed."""
    if importlib.util.find_spec("daskflow") is None:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import daskflow

    return daskflow


def daskflow_runners(client: Client) -> dict[str, Runner]:
    df = import_daskflow()
    inc_t, total_t = df.task(inc), df.task(total)
    summary_t, combine_t = df.task(partition_summary), df.task(combine)
    nap_t = df.task(nap)

    @df.flow(name="bench-fan", cluster=client)
    def fan(n: int) -> int:
        return total_t(inc_t.map(range(n)))

    @df.flow(name="bench-chain", cluster=client)
    def chain(n: int) -> int:
        fut = inc_t.submit(0)
        for _ in range(n - 1):
            fut = inc_t.submit(fut)
        return fut.result()

    @df.flow(name="bench-frames", cluster=client)
    def frames(n: int) -> pd.DataFrame:
        return combine_t(summary_t.map(range(n), df.unmapped(ROWS)))

    @df.flow(name="bench-naps", cluster=client)
    def naps(n: int) -> int:
        return total_t(nap_t.map(range(n)))

    return {
        "a": lambda _, n: fan(n),
        "b": lambda _, n: chain(n),
        "c": lambda _, n: frames(n),
        "d": lambda _, n: fan(n),
        "e": lambda _, n: naps(n),
    }


# -- measuring ---------------------------------------------------------------------------------
def same(a: Any, b: Any) -> bool:
    if isinstance(a, pd.DataFrame) and isinstance(b, pd.DataFrame):
        return a.shape == b.shape and np.allclose(a.to_numpy(float), b.to_numpy(float))
    return bool(a == b)


def run_workload(
    client: Client, name: str, runners: dict[str, Runner], n: int, repeats: int
) -> list[dict[str, Any]]:
    for run in runners.values():
        run(client, WARMUP[name])
    times: dict[str, list[float]] = {v: [] for v in runners}
    cpu: dict[str, list[float]] = {v: [] for v in runners}
    reference: Any = None
    for rep in range(repeats):
        for variant, run in runners.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            result = run(client, n)
            seconds = time.perf_counter() - start
            cpu[variant].append(time.process_time() - start_cpu)
            if reference is None:
                reference = result
            elif not same(reference, result):
                raise RuntimeError(f"({name}) {variant} returned a different result")
            times[variant].append(seconds)
            print(f"  ({name}) {variant:<8} {rep + 1}/{repeats}: {seconds:.3f} s", flush=True)
    tasks = n if name == "b" else n + 1
    medians = {v: statistics.median(t) for v, t in times.items()}
    best = min((v for v in medians if v != "daskflow"), key=medians.__getitem__)
    best_raw = medians[best]
    cpus = {v: statistics.median(t) for v, t in cpu.items()}
    # each repeat's daskflow time over the best raw variant's in the same repeat: the
    # machine's drift over a run (a slower minute) falls on both sides of each ratio
    paired = [d / b for d, b in zip(times["daskflow"], times[best], strict=True)]
    return [
        {
            "workload": name,
            "size": n,
            "n_tasks": tasks,
            "variant": variant,
            "times_s": times[variant],
            "median_s": med,
            "us_per_task": ((med - best_raw) if variant == "daskflow" else med) / tasks * 1e6,
            "cpu_s": cpus[variant],
            "cpu_us_per_task": (
                (cpus[variant] - cpus[best]) if variant == "daskflow" else cpus[variant]
            )
            / tasks
            * 1e6,
            "ratio": statistics.median(paired) if variant == "daskflow" else None,
            "ratio_of_medians": med / best_raw if variant == "daskflow" else None,
            "target": TARGETS[name] if variant == "daskflow" else None,
        }
        for variant, med in medians.items()
    ]


def import_times(runs: int = 5) -> dict[str, float]:
    """Median wall ms of ``python -c STMT`` in a subprocess, minus ``python -c pass``."""
    spec = importlib.util.find_spec("daskflow")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("daskflow is not importable")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(Path(spec.origin).parents[1]), env.get("PYTHONPATH")])
    )

    def median_ms(stmt: str) -> float:
        cmd = [sys.executable, "-c", stmt]
        subprocess.run(cmd, check=True, env=env)  # untimed: warm the file cache
        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run(cmd, check=True, env=env)
            samples.append((time.perf_counter() - start) * 1e3)
        return statistics.median(samples)

    base = median_ms("pass")
    mods = ("distributed", "daskflow", "daskflow, distributed")
    out = {m: median_ms(f"import {m}") - base for m in mods}
    return {"python_ms": base, **out, "difference_ms": out["daskflow"] - out["distributed"]}


def print_report(rows: list[dict[str, Any]], imports: dict[str, float]) -> None:
    print(
        f"\n{'workload':<11}{'tasks':>7}  {'variant':<9}{'median s':>9}{'us/task':>10}"
        f"{'cpu us/task':>12}  ratio"
    )
    for r in rows:
        ratio = ""
        if r["ratio"] is not None:
            verdict = "ok" if r["ratio"] <= r["target"] else "MISS"
            ratio = (
                f"{r['ratio']:.2f} (target <= {r['target']:.2f}: {verdict}; "
                f"ratio of medians {r['ratio_of_medians']:.2f})"
            )
        label = f"({r['workload']}) {r['size']}"
        line = f"{label:<11}{r['n_tasks']:>7}  {r['variant']:<9}{r['median_s']:>9.3f}"
        line += f"{r['us_per_task']:>10.0f}{r['cpu_us_per_task']:>12.0f}"
        print(f"{line}  {ratio}".rstrip())
    print(
        "us/task: daskflow = overhead over the best raw median; raw = median / tasks. "
        "cpu: this process's CPU time, likewise."
    )
    verdict = "ok" if imports["difference_ms"] < IMPORT_TARGET_MS else "MISS"
    print(
        f"\nimport, ms over `python -c pass` ({imports['python_ms']:.0f} ms): "
        f"distributed {imports['distributed']:.0f}, daskflow {imports['daskflow']:.0f}, "
        f"both {imports['daskflow, distributed']:.0f}\n"
        f"daskflow - distributed: {imports['difference_ms']:+.0f} ms "
        f"(target < {IMPORT_TARGET_MS:.0f}: {verdict})"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time daskflow flows against the same work in raw Dask (futures and "
        "delayed) on one LocalCluster(n_workers=2, threads_per_worker=1), and time "
        "`import daskflow` against `import distributed`.",
        epilog="Workloads: a = 10,000 mapped inc + reduce, b = chain of 1,000 inc, "
        "c = 40 x 250k-row dataframe partitions filtered, grouped and combined, "
        "d = 100,000 mapped inc + reduce, e = 60 x 0.2 s sleeps + reduce.",
    )
    add = parser.add_argument
    add("--quick", action="store_true", help="small sizes (a=1000, b=200, c=8), 1 repeat")
    add(
        "--repeats",
        type=int,
        metavar="N",
        help="timed runs per variant (default: 3 for a and b, 15 for c; --quick: 1)",
    )
    add(
        "--only",
        default="a,b,c,d,e",
        metavar="LIST",
        help="comma-separated workloads (default a,b,c,d,e)",
    )
    add("--json", type=Path, metavar="PATH", help="also write the results to PATH as JSON")
    add(
        "--store",
        default="temp",
        metavar="URL",
        help="where daskflow records the runs: 'temp' (a new SQLite file, the default), "
        "'none' (no run store: the engine alone), or a path / SQLAlchemy URL",
    )
    args = parser.parse_args(argv)
    args.only = [w.strip() for w in args.only.split(",") if w.strip()]
    if unknown := sorted(set(args.only) - set(FULL)):
        parser.error(f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(FULL)}")
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    import_daskflow()  # fail early, before starting a cluster
    imports = import_times()
    raw: dict[str, dict[str, Runner]] = {
        "a": {"futures": fan_futures, "delayed": fan_delayed},
        "b": {"futures": chain_futures, "delayed": chain_delayed},
        "c": {"futures": frames_futures, "delayed": frames_delayed},
        "d": {"futures": fan_futures},
        "e": {"futures": naps_futures, "delayed": naps_delayed},
    }
    load_before = os.getloadavg()
    rows: list[dict[str, Any]] = []
    store = args.store
    if store == "temp":
        store = str(Path(tempfile.mkdtemp(prefix="daskflow-bench-")) / "daskflow.db")
    print(f"run store: {store}", flush=True)
    with (
        dask.config.set(
            {
                "daskflow.store": store,
                "daskflow.progress": False,
                "daskflow.logging.console-level": "WARNING",
            }
        ),
        LocalCluster(n_workers=2, threads_per_worker=1) as cluster,
        Client(cluster) as client,
    ):
        flows = daskflow_runners(client)
        for name in args.only:
            print(f"workload ({name}), size {sizes[name]}", flush=True)
            runners = {"daskflow": flows[name], **raw[name]}
            repeats = args.repeats or (1 if args.quick else REPEATS[name])
            rows += run_workload(client, name, runners, sizes[name], repeats)
    load_after = os.getloadavg()
    print_report(rows, imports)
    print(
        "\nload average (1, 5, 15 min): before "
        + ", ".join(f"{x:.2f}" for x in load_before)
        + "; after "
        + ", ".join(f"{x:.2f}" for x in load_after)
        + f"; {os.cpu_count()} CPUs"
    )
    if args.json:
        meta = {
            "repeats": args.repeats or ({w: 1 for w in args.only} if args.quick else REPEATS),
            "quick": args.quick,
            "rows_per_partition": ROWS,
            "store": store,
        }
        payload = {
            "config": meta,
            "results": rows,
            "import_ms": imports,
            "load_average": {"before": load_before, "after": load_after},
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()

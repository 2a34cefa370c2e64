"""Result storage and caching: what ``persist_result`` and cache hits cost.

One ``LocalCluster(n_workers=2, threads_per_worker=1)`` and one ``Client`` are
started once; everything runs on them, in this process. Flow runs are
recorded in a new SQLite run store and results go to result storage, both in
a new temporary folder (``DASKFLOW_STORE`` / ``DASKFLOW_RESULTS`` are set
before daskflow is imported; the folder is removed at the end).

1. Persisting a big DataFrame
-----------------------------
A task builds a DataFrame of ``--gb`` GB in memory (4 float64 columns of
standard normals + 1 int64 ``id`` column, 40 bytes a row: 1 GB = 25,000,000
rows) from a fixed seed, on a worker. Then it is written as Parquet, twice:

daskflow  a flow ``build -> keep -> length``: ``keep`` returns its input
          unchanged and has ``persist_result=True``, so the attempt wrapper
          writes the frame to result storage (``pa.Table.from_pandas`` +
          ``pq.write_table``, through fsspec, plus the result's JSON record).
pyarrow   raw Dask: ``client.submit(build)`` then a task that runs
          ``pq.write_table(pa.Table.from_pandas(df), path)`` on it.

Only the write is timed, inside the worker, so building the frame (which
takes as long as writing it) adds no noise:

- daskflow: the ``keep`` task run's duration as recorded in the run store
  (its RUNNING transition is stamped just before the function is called, its
  COMPLETED one after the result was stored: the identity function + the
  whole persist step);
- pyarrow: ``time.perf_counter()`` around ``write_table`` in the task.

``ratio`` = daskflow / pyarrow, target <= 1.1. As a cross-check, the same
work also runs without the write (the flow with ``persist_result=False``;
the raw Dask graph with ``len(df)`` in place of the write) and the wall-time
differences (with write - without) are shown with their ratio: noisier (they
include a second build of the frame), but they would show any cost the
in-worker timing cannot see. ``keep without persist`` is the engine's own
floor for that task run. The frame never comes back to this process (the
flows return its length) and every written file is deleted once measured;
at most two copies of the frame are alive at once (building it).

2. Cache hits
-------------
A task ``@task(cache_key_fn=task_input_hash)`` mapped over ``range(N)``
(10,000; ``--quick``: 1,000) in a flow that returns the mapped values. Run
once in a fresh result storage folder (every task run misses: it runs and
stores its result and a cache entry), then again (every task run must end
CACHED: checked in the run store, the script fails otherwise), then the
same flow with an uncached task, for reference. ``ms/task`` = wall / N.

3. Signing
----------
Stored results are signed (HMAC-SHA256) and checked before they are loaded,
and written owner-only and whole (a new file renamed into place). In this
process, no cluster: ``ResultStorage.write`` then ``.read`` of a
``--sign-mb`` MB DataFrame (default 100) and of a 1 MB pickle, against the
plain ``pq.write_table`` / ``pq.read_table`` and ``cloudpickle`` + a file, as
before signing. Medians of ``--repeats`` x 5 turns (the variants alternate).

Dask's nanny starts every worker with ``MALLOC_TRIM_THRESHOLD_=65536``
(``distributed.nanny.pre-spawn-environ``), which changes how fast writing
through a Python file object is; the header says what the workers run with,
and ``--no-malloc-trim`` starts them without it, to tell the two apart.

Reading the output
------------------
Each figure is the median of ``--repeats`` runs (default 3; ``--quick``: 1)
after an untimed warm-up; the variants take turns. Timings on a small or
shared machine are noisy: compare the ratios of one run. Run it as::

    python benchmarks/results.py --quick
    python benchmarks/results.py                       # 1 GB, 10,000 cache hits
    python benchmarks/results.py --gb 0.5 --n 5000 --repeats 5 --json results.json
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
from distributed import Client, LocalCluster

BYTES_PER_ROW = 5 * 8  # 4 float64 + 1 int64 columns
FULL = {"gb": 1.0, "n": 10_000}
QUICK = {"gb": 0.1, "n": 1_000}
WARMUP = {"rows": 10_000, "n": 100}
PERSIST_TARGET = 1.1


# -- the work itself: plain functions, run on the workers ---------------------------------------
def make_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    """``rows`` x (4 float64 + int64 ``id``); the float block is not copied into the frame."""
    rng = np.random.default_rng(seed)
    floats = rng.standard_normal((4, rows))
    df = pd.DataFrame(floats.T, columns=["a", "b", "c", "d"], copy=False)
    df["id"] = np.arange(rows, dtype=np.int64)
    return df


def keep(df: pd.DataFrame) -> pd.DataFrame:
    return df


def frame_len(df: pd.DataFrame) -> int:
    return len(df)


def write_with_pyarrow(df: pd.DataFrame, path: str) -> tuple[float, int, int]:
    """``pq.write_table(pa.Table.from_pandas(df), path)``, timed: (seconds, bytes, rows)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    start = time.perf_counter()
    pq.write_table(pa.Table.from_pandas(df), path)
    seconds = time.perf_counter() - start
    return seconds, os.path.getsize(path), len(df)


def square(i: int) -> int:
    return i * i


# -- setting up --------------------------------------------------------------------------------
def import_daskflow(root: Path) -> ModuleType:
    """Import daskflow recording into ``root`` (falls back to this checkout's ``src/``)."""
    os.environ["DASKFLOW_STORE"] = str(root / "daskflow.db")
    os.environ["DASKFLOW_RESULTS"] = str(root / "results")
    if "daskflow" in sys.modules:
        raise RuntimeError("daskflow was imported before its store was configured")
    if importlib.util.find_spec("daskflow") is None:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import daskflow

    return daskflow


def task_runs(df: ModuleType, flow_name: str, expected: int) -> pd.DataFrame:
    """The task runs of ``flow_name``'s newest run, once all ``expected`` are final."""
    final = {"COMPLETED", "CACHED", "FAILED", "CRASHED", "TIMED_OUT", "UPSTREAM_FAILED"}
    deadline = time.monotonic() + 30
    while True:
        run = df.runs(flow=flow_name, limit=1)[0]
        frame = run.to_pandas()
        if len(frame) >= expected and frame["state"].isin(final).all():
            return frame
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{flow_name}: {len(frame)} of {expected} task runs recorded, states "
                f"{frame['state'].value_counts().to_dict()}"
            )
        time.sleep(0.05)


def remove(path: str | Path) -> None:
    """Delete a written file and its record, so the next write starts on an idle disk."""
    path = Path(path)
    for p in (path, path.with_suffix(".json")):
        p.unlink(missing_ok=True)
    os.sync()


# -- 1. persisting a big DataFrame --------------------------------------------------------------
class PersistBench:
    def __init__(self, df: ModuleType, client: Client, root: Path) -> None:
        self.df, self.client = df, client
        self.storage = root / "persist"
        self.raw_dir = root / "pyarrow"
        self.raw_dir.mkdir(parents=True)
        build_t = df.task(make_frame, name="build")
        length_t = df.task(frame_len, name="length")

        def make(persist: bool) -> Any:
            keep_t = df.task(keep, name="keep", persist_result=persist)

            def persist_flow(rows: int) -> int:
                return length_t(keep_t.submit(build_t.submit(rows)))

            name = "bench-persist" if persist else "bench-no-persist"
            storage = str(self.storage)
            return df.flow(persist_flow, name=name, cluster=client, result_storage=storage)

        self.flows = {True: make(True), False: make(False)}

    def daskflow(self, rows: int, persist: bool) -> dict[str, Any]:
        flow = self.flows[persist]
        start = time.perf_counter()
        n = flow(rows)
        wall = time.perf_counter() - start
        assert n == rows, (n, rows)
        runs = task_runs(self.df, flow.name, 3)
        bad = runs[runs["state"] != "COMPLETED"]
        if len(bad):
            raise RuntimeError(f"{flow.name}: task runs did not complete:\n{bad}")
        kept = runs[runs["task_name"] == "keep"].iloc[0]
        out = {"wall_s": wall, "task_s": kept["duration"].total_seconds(), "size": None}
        if persist:
            if pd.isna(kept["result_location"]):
                raise RuntimeError(f"{flow.name}: keep's result was not stored")
            out["size"] = int(kept["result_size"])
            remove(kept["result_location"])
        return out

    def pyarrow(self, rows: int, write: bool) -> dict[str, Any]:
        client = self.client
        path = str(self.raw_dir / f"{uuid.uuid4().hex}.parquet")
        start = time.perf_counter()
        frame = client.submit(make_frame, rows, pure=False)
        if write:
            seconds, size, n = client.submit(write_with_pyarrow, frame, path, pure=False).result()
        else:
            seconds, size = None, None
            n = client.submit(frame_len, frame, pure=False).result()
        wall = time.perf_counter() - start
        del frame
        assert n == rows, (n, rows)
        if write:
            remove(path)
        return {"wall_s": wall, "task_s": seconds, "size": size}

    def run(self, gb: float, repeats: int) -> dict[str, Any]:
        rows = int(gb * 1e9 / BYTES_PER_ROW)
        variants = {
            "daskflow": lambda r: self.daskflow(r, True),
            "pyarrow": lambda r: self.pyarrow(r, True),
            "daskflow-no-write": lambda r: self.daskflow(r, False),
            "pyarrow-no-write": lambda r: self.pyarrow(r, False),
        }
        for run in variants.values():
            run(WARMUP["rows"])
        samples: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
        for rep in range(repeats):
            for variant, run in variants.items():
                gc.collect()
                result = run(rows)
                samples[variant].append(result)
                task = "" if result["task_s"] is None else f", in task {result['task_s']:.3f} s"
                print(
                    f"  (persist) {variant:<18} {rep + 1}/{repeats}: "
                    f"wall {result['wall_s']:.3f} s{task}",
                    flush=True,
                )

        def med(variant: str, key: str) -> float:
            return statistics.median(s[key] for s in samples[variant])

        write = {v: med(v, "task_s") for v in ("daskflow", "pyarrow")}
        diff = {
            v: med(v, "wall_s") - med(f"{v}-no-write", "wall_s") for v in ("daskflow", "pyarrow")
        }
        return {
            "gb": gb,
            "rows": rows,
            "frame_bytes": rows * BYTES_PER_ROW,
            "repeats": repeats,
            "samples": samples,
            "write_s": write,
            "ratio": write["daskflow"] / write["pyarrow"],
            "target": PERSIST_TARGET,
            "wall_diff_s": diff,
            "wall_diff_ratio": diff["daskflow"] / diff["pyarrow"],
            "keep_without_persist_s": med("daskflow-no-write", "task_s"),
            "file_bytes": {v: samples[v][0]["size"] for v in ("daskflow", "pyarrow")},
        }


# -- 2. cache hits ------------------------------------------------------------------------------
class CacheBench:
    def __init__(self, df: ModuleType, client: Client, root: Path) -> None:
        from daskflow.cache import task_input_hash

        self.df, self.root = df, root
        cached_t = df.task(square, name="square-cached", cache_key_fn=task_input_hash)
        plain_t = df.task(square, name="square")

        @df.flow(name="bench-cache", cluster=client)
        def cached(n: int) -> list[int]:
            return cached_t.map(range(n))

        @df.flow(name="bench-no-cache", cluster=client)
        def plain(n: int) -> list[int]:
            return plain_t.map(range(n))

        self.cached, self.plain = cached, plain

    def once(self, n: int) -> dict[str, float]:
        """A miss run and a hit run in a fresh storage folder, then the uncached flow."""
        folder = self.root / f"cache-{uuid.uuid4().hex[:8]}"
        flow = self.cached.with_options(result_storage=str(folder))
        expected = [i * i for i in range(n)]
        out: dict[str, float] = {}
        for phase, want in (("first", "COMPLETED"), ("second", "CACHED")):
            start = time.perf_counter()
            values = flow(n)
            out[phase] = time.perf_counter() - start
            if list(values) != expected:
                raise RuntimeError(f"bench-cache ({phase} run) returned wrong values")
            states = task_runs(self.df, flow.name, n)["state"]
            if len(states) != n or not (states == want).all():
                raise RuntimeError(
                    f"bench-cache ({phase} run): expected {n} task runs {want}, got "
                    f"{len(states)}: {states.value_counts().to_dict()}"
                )
        out["stored_files"] = sum(len(files) for _, _, files in os.walk(folder))
        shutil.rmtree(folder)
        start = time.perf_counter()
        values = self.plain(n)
        out["uncached"] = time.perf_counter() - start
        if list(values) != expected:
            raise RuntimeError("bench-no-cache returned wrong values")
        return out

    def run(self, n: int, repeats: int) -> dict[str, Any]:
        self.once(WARMUP["n"])
        samples = []
        for rep in range(repeats):
            gc.collect()
            s = self.once(n)
            samples.append(s)
            print(
                f"  (cache) {rep + 1}/{repeats}: first {s['first']:.3f} s, "
                f"second {s['second']:.3f} s, uncached {s['uncached']:.3f} s",
                flush=True,
            )
        med = {k: statistics.median(s[k] for s in samples) for k in ("first", "second", "uncached")}
        return {
            "n": n,
            "repeats": repeats,
            "samples": samples,
            "median_s": med,
            "ms_per_task": {k: v / n * 1e3 for k, v in med.items()},
            "second_over_first": med["second"] / med["first"],
            "second_over_uncached": med["second"] / med["uncached"],
            "stored_files": samples[0]["stored_files"],
        }


class SigningBench:
    """Part 3: signed, owner-only result files against plain ones (see the docstring)."""

    def __init__(self, df: ModuleType, root: Path) -> None:
        from daskflow.results.storage import ResultStorage

        self.storage = ResultStorage(str(root / "signing"))
        self.plain = root / "plain"
        self.plain.mkdir()

    def plain_turn(self, value: Any) -> tuple[float, float]:
        import cloudpickle
        import pyarrow as pa
        import pyarrow.parquet as pq

        frame = isinstance(value, pd.DataFrame)
        path = self.plain / ("x.parquet" if frame else "x.pkl")
        start = time.perf_counter()
        if frame:
            pq.write_table(pa.Table.from_pandas(value), path)
        else:
            path.write_bytes(cloudpickle.dumps(value, protocol=5))
        written = time.perf_counter()
        if frame:
            pq.read_table(path).to_pandas()
        else:
            cloudpickle.loads(path.read_bytes())
        return written - start, time.perf_counter() - written

    def signed_turn(self, value: Any) -> tuple[float, float]:
        start = time.perf_counter()
        record = self.storage.write("x", value)
        written = time.perf_counter()
        self.storage.read(record)
        return written - start, time.perf_counter() - written

    def run(self, mb: float, repeats: int) -> dict[str, Any]:
        rng = np.random.default_rng(0)
        values = {
            f"{mb:g} MB DataFrame": make_frame(int(mb * 1e6) // BYTES_PER_ROW),
            "1 MB pickle": {"xs": rng.standard_normal(125_000), "n": 1},
        }
        out: dict[str, Any] = {}
        for label, value in values.items():
            turns: dict[str, list[tuple[float, float]]] = {"plain": [], "signed": []}
            self.plain_turn(value), self.signed_turn(value)  # warm-up
            for _ in range(repeats * 5):
                turns["plain"].append(self.plain_turn(value))
                turns["signed"].append(self.signed_turn(value))
            out[label] = {
                v: {
                    "write_ms": statistics.median(w for w, _ in t) * 1e3,
                    "read_ms": statistics.median(r for _, r in t) * 1e3,
                }
                for v, t in turns.items()
            }
            print(f"  (signing) {label}: done", flush=True)
        return out


# -- reporting ---------------------------------------------------------------------------------
def print_signing(signing: dict[str, Any]) -> None:
    print("\n(3) signed, owner-only result files against plain ones (this process)")
    print(f"  {'value':<22}{'variant':<9}{'write ms':>10}{'read ms':>10}{'total ms':>10}")
    for label, variants in signing.items():
        for v, t in variants.items():
            total = t["write_ms"] + t["read_ms"]
            print(f"  {label:<22}{v:<9}{t['write_ms']:>10.1f}{t['read_ms']:>10.1f}{total:>10.1f}")
        plain, signed = (sum(variants[v].values()) for v in ("plain", "signed"))
        print(f"  {'':<22}{'cost':<9}{signed - plain:>+30.1f}  ({signed / plain - 1:+.0%})")


def print_report(
    persist: dict[str, Any] | None, cache: dict[str, Any] | None, worker_trim: str
) -> None:
    print(f"\nworkers' MALLOC_TRIM_THRESHOLD_: {worker_trim}")
    if persist is not None:
        p = persist
        print(
            f"\n(1) persisting a {p['frame_bytes'] / 1e9:.2f} GB DataFrame "
            f"({p['rows']:,} rows x 5 columns), median of {p['repeats']}"
        )
        print(f"  {'variant':<34}{'write s':>9}{'file MB':>10}{'wall diff s':>13}")
        labels = {
            "daskflow": "daskflow persist_result=True",
            "pyarrow": "pq.write_table(from_pandas(df))",
        }
        for v, label in labels.items():
            print(
                f"  {label:<34}{p['write_s'][v]:>9.3f}{p['file_bytes'][v] / 1e6:>10.1f}"
                f"{p['wall_diff_s'][v]:>13.3f}"
            )
        verdict = "ok" if p["ratio"] <= p["target"] else "MISS"
        print(
            f"  ratio daskflow / pyarrow: {p['ratio']:.2f} "
            f"(target <= {p['target']:.2f}: {verdict}); "
            f"from the wall differences: {p['wall_diff_ratio']:.2f}"
        )
        print(f"  keep without persist (engine floor): {p['keep_without_persist_s'] * 1e3:.2f} ms")
    if cache is not None:
        c = cache
        print(f"\n(2) {c['n']:,} mapped task runs with cache_key_fn=task_input_hash")
        print(f"  {'run':<40}{'wall s':>9}{'ms/task':>9}")
        rows = {
            "first": "first (all miss: run + store)",
            "second": "second (all CACHED)",
            "uncached": "same flow, uncached task (reference)",
        }
        for k, label in rows.items():
            print(f"  {label:<40}{c['median_s'][k]:>9.3f}{c['ms_per_task'][k]:>9.3f}")
        print(
            f"  second / first: {c['second_over_first']:.2f}; "
            f"second / uncached: {c['second_over_uncached']:.2f}; "
            f"files stored by the first run: {c['stored_files']:,}"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time daskflow's persist_result on a big DataFrame against pyarrow's "
        "write_table, and a flow of cache hits against its first run, on one "
        "LocalCluster(n_workers=2, threads_per_worker=1). The module docstring says how "
        "to read the numbers.",
    )
    add = parser.add_argument
    add("--quick", action="store_true", help="small sizes (--gb 0.1, --n 1000), 1 repeat")
    add("--gb", type=float, help="DataFrame size in GB (default 1; --quick: 0.1)")
    add("--n", type=int, help="mapped task runs in the cache flow (default 10000; --quick: 1000)")
    add("--repeats", type=int, metavar="N", help="timed runs per variant (default 3; --quick: 1)")
    add(
        "--only",
        default="persist,cache,signing",
        metavar="LIST",
        help="some of persist, cache, signing",
    )
    add("--sign-mb", type=float, default=100.0, help="DataFrame size for part 3 (default 100)")
    add("--json", type=Path, metavar="PATH", help="also write the results to PATH as JSON")
    add(
        "--no-malloc-trim",
        action="store_true",
        help="start the workers without Dask's default MALLOC_TRIM_THRESHOLD_=65536 "
        "(diagnosis only: users' workers run with it)",
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    args.gb = sizes["gb"] if args.gb is None else args.gb
    args.n = sizes["n"] if args.n is None else args.n
    args.repeats = (1 if args.quick else 3) if args.repeats is None else args.repeats
    args.only = [w.strip() for w in args.only.split(",") if w.strip()]
    if unknown := sorted(set(args.only) - {"persist", "cache", "signing"}):
        parser.error(f"unknown part(s) {', '.join(unknown)}; choose from persist, cache, signing")
    if args.repeats < 1 or args.n < 1 or args.gb <= 0:
        parser.error("--repeats and --n must be at least 1, --gb positive")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="daskflow-results-bench-"))
    try:
        df = import_daskflow(root)
        print(f"run store and result storage under {root}", flush=True)
        import dask

        config: dict[str, Any] = {
            "daskflow.progress": False,
            "daskflow.logging.console-level": "WARNING",
        }
        if args.no_malloc_trim:
            environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
            environ.pop("MALLOC_TRIM_THRESHOLD_", None)
            config["distributed.nanny.pre-spawn-environ"] = environ
        persist = cache = signing = None
        worker_trim = ""
        if "signing" in args.only:
            print(f"(3) signing, {args.sign_mb:g} MB", flush=True)
            signing = SigningBench(df, root).run(args.sign_mb, args.repeats)
        if {"persist", "cache"} & set(args.only):
            with (
                dask.config.set(config),
                LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
                Client(cluster) as client,
            ):
                trim = set(client.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_").values())
                worker_trim = ", ".join(sorted(map(str, trim)))
                print(f"workers' MALLOC_TRIM_THRESHOLD_: {worker_trim}", flush=True)
                if "persist" in args.only:
                    print(f"(1) persist, {args.gb} GB", flush=True)
                    persist = PersistBench(df, client, root).run(args.gb, args.repeats)
                if "cache" in args.only:
                    print(f"(2) cache, n = {args.n}", flush=True)
                    cache = CacheBench(df, client, root).run(args.n, args.repeats)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if persist is not None or cache is not None:
        print_report(persist, cache, worker_trim)
    if signing is not None:
        print_signing(signing)
    if args.json:
        meta = {
            "quick": args.quick,
            "repeats": args.repeats,
            "gb": args.gb,
            "n": args.n,
            "worker_malloc_trim_threshold": worker_trim,
        }
        payload = {"config": meta, "persist": persist, "cache": cache, "signing": signing}
        args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()

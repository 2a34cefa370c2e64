"""``Task.map_partitions`` against Dask's own ``DataFrame.map_partitions``.

The 40-partition workload of ``overhead.py``: 40 partitions of 250,000 rows
(``id`` int64, ``name`` category of 26 letters, ``x``/``y`` float64) made with
``dd.from_map``; each partition is filtered (``x > 0``) and grouped by name
(sums and count); the 40 summaries are combined. Dask: ``ddf.map_partitions(
summarize)`` then the combine; daskflow: ``summarize_task.map_partitions(ddf)``
inside a flow (one tracked task run per partition), then the same combine.
Both on one ``LocalCluster(n_workers=2, threads_per_worker=1)``, alternating,
medians. Target (issue 4): ratio <= 1.1.

    python benchmarks/dataframes.py [--repeats 5] [--partitions 40] [--store none]
"""

from __future__ import annotations

import argparse
import statistics
import string
import tempfile
import time
from pathlib import Path

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
from distributed import Client, LocalCluster

import daskflow

ROWS = 250_000
LETTERS = list(string.ascii_lowercase)


def make_partition(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": np.arange(seed * ROWS, (seed + 1) * ROWS, dtype="int64"),
            "name": pd.Categorical.from_codes(rng.integers(0, 26, ROWS), LETTERS),
            "x": rng.standard_normal(ROWS),
            "y": rng.standard_normal(ROWS),
        }
    )


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    df = df[df["x"] > 0]
    return df.groupby("name", observed=False).agg(
        x=("x", "sum"), y=("y", "sum"), count=("id", "count")
    )


def combine(parts: pd.DataFrame) -> pd.DataFrame:
    return parts.groupby(level=0, observed=False).sum()


summarize_task = daskflow.task(summarize, name="summarize")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--partitions", type=int, default=40)
    parser.add_argument("--store", default="temp", help="'temp' (default), 'none' or a URL")
    args = parser.parse_args()
    store = args.store
    if store == "temp":
        store = str(Path(tempfile.mkdtemp(prefix="daskflow-df-")) / "daskflow.db")
    n = args.partitions
    with (
        dask.config.set(
            {
                "daskflow.store": store,
                "daskflow.progress": False,
                "daskflow.logging.console-level": "WARNING",
            }
        ),
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):

        def raw() -> pd.DataFrame:
            ddf = dd.from_map(make_partition, list(range(n)))
            return combine(ddf.map_partitions(summarize).compute())

        @daskflow.flow(name="bench-map-partitions", cluster=client)
        def with_daskflow() -> pd.DataFrame:
            ddf = dd.from_map(make_partition, list(range(n)))
            return combine(summarize_task.map_partitions(ddf).compute())

        variants = {"dask": raw, "daskflow": with_daskflow}
        for run in variants.values():
            run()  # warm up
        times: dict[str, list[float]] = {name: [] for name in variants}
        results = {}
        for _ in range(args.repeats):
            for name, run in variants.items():
                start = time.perf_counter()
                results[name] = run()
                times[name].append(time.perf_counter() - start)
    pd.testing.assert_frame_equal(results["dask"], results["daskflow"])
    medians = {name: statistics.median(t) for name, t in times.items()}
    ratio = medians["daskflow"] / medians["dask"]
    print(f"{n} partitions x {ROWS:,} rows, {args.repeats} repeats, store: {store}")
    for name, median in medians.items():
        print(f"  {name:<9} median {median:.3f} s")
    verdict = "ok" if ratio <= 1.1 else "MISS"
    print(f"  ratio daskflow / dask: {ratio:.2f} (target <= 1.10: {verdict})")


if __name__ == "__main__":
    main()

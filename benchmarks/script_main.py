"""Worker processes that do not run the script again, against ones that do.

By default the embedded cluster's worker processes start without importing
the user's ``__main__`` script (:mod:`daskflow.engine.script_main`), so a
script with no ``if __name__ == "__main__":`` guard works; functions defined
in the script travel to the workers by value. ``daskflow.worker-imports-main:
true`` gives multiprocessing's own behaviour (each worker imports the script
as ``__mp_main__``). This measures what the choice costs, in whole
``python script.py`` processes on the embedded cluster (2 workers, 1 thread
each), alternating the two settings:

start   from the first flow call to its result: the cluster starts here
        (a trivial flow of 2 tasks).
python  pure-Python tasks: a fan-out of N ``inc`` (2,000) and a reduce, then
        a chain of 200 ``inc``.
frames  the dataframe workload of ``overhead.py``: P partitions (20) of
        250,000 rows generated in the task, filtered, grouped, combined.
total   the whole process, as ``time python script.py`` reads it.

The script is guarded, so that both settings can run it. Each line is the
median over ``--repeats`` processes (default 5) and the ratio of the default
(``no-import``) to ``import``, repeat by repeat. Run it as::

    python benchmarks/script_main.py
    python benchmarks/script_main.py --repeats 9 --json script_main.json
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

SCRIPT = """
import json, string, sys, time
import numpy as np
import pandas as pd
from daskflow import flow, task

@task
def inc(x: int) -> int:
    return x + 1

@task
def total(xs: list[int]) -> int:
    return sum(xs)

@task
def partition_summary(seed: int, n_rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "id": np.arange(n_rows, dtype="int64"),
        "name": pd.Categorical(rng.choice(list(string.ascii_lowercase), n_rows)),
        "x": rng.standard_normal(n_rows),
        "y": rng.standard_normal(n_rows),
    })
    kept = df[df["x"] > 0]
    summary = kept.groupby("name", observed=True)
    return summary.agg(x=("x", "sum"), y=("y", "sum"), n=("id", "count"))

@task
def combine(parts: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(parts).groupby(level=0).sum()

@flow
def start() -> int:
    return total([inc(0), inc(1)])

@flow
def python_tasks(n: int, hops: int) -> int:
    fanned = total(inc.map(range(n)))
    x = 0
    for _ in range(hops):
        x = inc(x)
    return fanned + x

@flow
def frames(parts: int) -> int:
    return int(combine(partition_summary.map(range(parts), n_rows=250_000))["n"].sum())

if __name__ == "__main__":
    n, hops, parts = (int(a) for a in sys.argv[1:4])
    spans = {}
    for name, call in (
        ("start", lambda: start()),
        ("python", lambda: python_tasks(n, hops)),
        ("frames", lambda: frames(parts)),
    ):
        t0 = time.perf_counter()
        call()
        spans[name] = time.perf_counter() - t0
    print(json.dumps(spans))
"""

SETTINGS = {"no-import": "false", "import": "true"}


def run_once(script: Path, folder: Path, setting: str, sizes: list[int]) -> dict[str, float]:
    """One ``python script.py`` process with ``daskflow.worker-imports-main`` set."""
    env = dict(
        os.environ,
        DASKFLOW__WORKER_IMPORTS_MAIN=SETTINGS[setting],
        DASKFLOW__PROGRESS="false",
        DASKFLOW__LOGGING__CONSOLE_LEVEL="OFF",
        DASKFLOW__LOCAL_CLUSTER='{"n_workers": 2, "threads_per_worker": 1}',
        DASKFLOW_STORE=str(folder / "runs.db"),
        DASKFLOW_RESULTS=str(folder / "results"),
    )
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(script), *map(str, sizes)],
        env=env,
        capture_output=True,
        text=True,
        cwd=folder,
        check=False,
    )
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{setting}: exit {done.returncode}\n{done.stderr}")
    spans: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    spans["total"] = elapsed
    return spans


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="processes per setting")
    parser.add_argument("-n", type=int, default=2000, help="tasks of the fan-out")
    parser.add_argument("--hops", type=int, default=200, help="length of the chain")
    parser.add_argument("--parts", type=int, default=20, help="dataframe partitions")
    parser.add_argument("--json", metavar="FILE", help="also write the figures here")
    args = parser.parse_args(argv)
    sizes = [args.n, args.hops, args.parts]
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in SETTINGS}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        script = folder / "workload.py"
        script.write_text(SCRIPT)
        for repeat in range(args.repeats):
            for setting in SETTINGS:  # taking turns: a machine that drifts moves both
                runs[setting].append(run_once(script, folder, setting, sizes))
            print(f"repeat {repeat + 1}/{args.repeats} done", file=sys.stderr)
    rows = []
    print(f"{'span':<8}{'no-import s':>13}{'import s':>11}{'ratio':>8}")
    for span in ("start", "python", "frames", "total"):
        ours = [r[span] for r in runs["no-import"]]
        theirs = [r[span] for r in runs["import"]]
        ratio = statistics.median(a / b for a, b in zip(ours, theirs, strict=True))
        row = {
            "span": span,
            "no_import_s": statistics.median(ours),
            "import_s": statistics.median(theirs),
            "ratio": ratio,
        }
        rows.append(row)
        print(f"{span:<8}{row['no_import_s']:>13.3f}{row['import_s']:>11.3f}{ratio:>8.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

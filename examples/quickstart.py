#!/usr/bin/env python3
"""A real flow on the embedded local Dask cluster: fan-out, retries, fan-in.

Run it with ``python3 path/to/examples/quickstart.py`` from any folder, or as
``path/to/examples/quickstart.py``, in the environment daskflow is installed in
(``. .venv/bin/activate``).
"""

from __future__ import annotations

import random
import sys

try:
    import pandas as pd

    from daskflow import flow, task, unmapped
except ModuleNotFoundError as missing:  # run outside daskflow's environment
    sys.exit(
        f"{missing.name} is not installed for {sys.executable}: activate the environment "
        "daskflow is installed in (. .venv/bin/activate in the daskflow folder) and run again"
    )

_timed_out: set[str] = set()  # days whose first call failed (retries run in the same worker)


@task(retries=3, retry_delay_seconds=[0.1, 0.2, 0.4])
def extract(day: str) -> pd.DataFrame:
    """Pretend to download one day of sales; a first call fails now and then, like a real API."""
    if day not in _timed_out and random.random() < 0.3:
        _timed_out.add(day)
        raise ConnectionError(f"sales API timed out for {day}")
    rng = random.Random(day)
    return pd.DataFrame({"day": day, "amount": [rng.uniform(1, 100) for _ in range(1_000)]})


@task
def transform(df: pd.DataFrame, rate: float) -> pd.DataFrame:
    return df.assign(amount_eur=df["amount"] * rate)


@task
def load(frames: list[pd.DataFrame]) -> float:
    return float(pd.concat(frames)["amount_eur"].sum())


@flow(name="etl")
def etl(days: list[str], rate: float = 0.92) -> float:
    raw = extract.map(days)
    clean = transform.map(raw, unmapped(rate))
    return load(clean)


if __name__ == "__main__":
    days = [f"2024-01-{d:02d}" for d in range(1, 15)]
    total = etl(days)
    print(f"etl over {len(days)} days: total {total:,.2f} EUR")

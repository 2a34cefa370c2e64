"""Make ``docs/images/panel.png``: the daskflow panel after a real run, in Chromium.

Runs a small pipeline (a fan-out with retries and one failing branch) on a
``LocalCluster`` into a run store in a temporary folder, serves the panel
with ``daskflow dashboard`` on a free port, opens it in headless Chromium
(Debian's ``chromium`` and ``chromedriver``, as the tests use) and saves the
screenshot::

    python docs/make_panel_image.py [--out docs/images/panel.png]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent


def pipeline_runs(store: Path) -> None:
    """Two flow runs of a small ETL: one completes, one fails in a branch."""
    os.environ["DASKFLOW_STORE"] = str(store)
    os.environ["DASKFLOW__PROGRESS"] = "false"
    from distributed import Client, LocalCluster

    from daskflow import flow, task

    @task(retries=2, retry_delay_seconds=0)
    def extract(day: int) -> list[float]:
        time.sleep(random.uniform(0.02, 0.1))
        return [day * 1.5] * 100

    @task
    def transform(rows: list[float], broken: bool) -> float:
        time.sleep(random.uniform(0.02, 0.08))
        if broken and rows[0] > 60:
            raise ValueError(f"bad rows for value {rows[0]}")
        return sum(rows)

    @task
    def load(totals: list[float]) -> float:
        return sum(totals)

    @flow(name="etl")
    def etl(days: int, broken: bool = False) -> float:
        return load(transform.map(extract.map(range(days)), broken))

    with (
        LocalCluster(n_workers=2, threads_per_worker=2, dashboard_address=":0") as cluster,
        Client(cluster),
    ):
        etl(60)
        etl(60, broken=True, return_state=True)


def screenshot(store: Path, out: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from daskflow.panel.serve import free_port

    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daskflow.cli",
            "--store",
            str(store),
            "dashboard",
            "--port",
            str(port),
        ]
    )
    try:
        url = f"http://127.0.0.1:{port}/daskflow"
        for _ in range(150):
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                time.sleep(0.2)
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1600,1300"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            driver.get(url)
            time.sleep(4)  # the first refresh and Bokeh's layout
            out.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(out))
        finally:
            driver.quit()
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "images" / "panel.png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "runs.db"
        pipeline_runs(store)
        screenshot(store, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

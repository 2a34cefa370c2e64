"""Make the panel's pictures in ``docs/images/``: real runs, served, shot in Chromium.

Runs, on a two-worker ``LocalCluster``, into a run store in a temporary
folder: a small ETL twice (60 ``extract`` with retries, 60 ``transform``, one
``load``; the second run's ``transform`` fails for part of its input) and a
fan-out of ``--tasks`` task runs (100,000; about a minute) of which one in
5,000 fails. Then it serves the panel with ``daskflow dashboard`` on a free
port, opens each run's page (``?run=ID``) in headless Chromium (Debian's
``chromium`` and ``chromedriver``, as the tests use) at 1400 x 1000 (the
failed run 1400 x 1300, to show its traceback) and saves:

- ``panel.png``: the failed ETL run's overview (progress, failures and the
  traceback of the first one);
- ``panel-big-run.png``: the big run's overview;
- ``panel-big-timeline.png``: the big run's timeline (counts per task name
  and time bin);
- ``panel-graph.png``: the failed ETL run's graph (a node per task name,
  coloured by state, with counts);
- ``panel-big-resources.png``: the big run's worker CPU and memory, as
  recorded with the run.

::

    python docs/make_panel_image.py [--out docs/images] [--tasks 100000]
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
SIZE = (1400, 1000)
#: Find elements in Bokeh's shadow roots, and click the tab named arguments[0].
CLICK_TAB = """
function deep(root, selector) {
    let found = [...root.querySelectorAll(selector)];
    for (const e of root.querySelectorAll('*')) {
        if (e.shadowRoot) found = found.concat(deep(e.shadowRoot, selector));
    }
    return found;
}
for (const e of deep(document, '.bk-tab')) {
    if (e.textContent.trim() === arguments[0]) { e.click(); return true; }
}
return false;
"""


def pipeline_runs(store: Path, tasks: int) -> dict[str, str]:
    """The ETL twice (the second fails) and a fan-out of ``tasks``; their flow-run ids."""
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

    @task
    def validate(record: int) -> int:
        if record % 5_000 == 4_999:
            raise ValueError(f"record {record}: amount is negative")
        return record

    @task
    def score(record: int) -> float:
        return record * 0.5

    @flow(name="score-records")
    def score_records(records: int) -> None:
        half = records // 2
        score.map(range(half))
        validate.map(range(records - half))

    with (
        LocalCluster(n_workers=2, threads_per_worker=2, dashboard_address=":0") as cluster,
        Client(cluster),
    ):
        etl(60)
        etl(60, broken=True, return_state=True)
        score_records(tasks, return_state=True)
    from daskflow.store import open_store

    runs = open_store(str(store)).list_flow_runs(limit=3)
    return {"big": runs[0].id, "failed": runs[1].id}


def screenshots(store: Path, runs: dict[str, str], out: Path) -> list[Path]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from daskflow.panel.serve import free_port

    port = free_port()
    command = [sys.executable, "-m", "daskflow.cli", "--store", str(store), "dashboard"]
    server = subprocess.Popen([*command, "--port", str(port)])
    shots = [  # the failed run's page a little taller: its first traceback in the picture
        ("panel.png", runs["failed"], "overview", 1300),
        ("panel-big-run.png", runs["big"], "overview", SIZE[1]),
        ("panel-big-timeline.png", runs["big"], "timeline", SIZE[1]),
        ("panel-graph.png", runs["failed"], "graph", SIZE[1]),
        ("panel-big-resources.png", runs["big"], "resources", SIZE[1]),
    ]
    written = []
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
        size = f"--window-size={SIZE[0]},{SIZE[1]}"
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", size):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            out.mkdir(parents=True, exist_ok=True)
            for name, run, tab, height in shots:
                driver.set_window_size(SIZE[0], height)
                driver.get(f"{url}?run={run}")
                time.sleep(4)  # the first refresh and Bokeh's layout
                if not driver.execute_script(CLICK_TAB, tab):
                    raise RuntimeError(f"the page has no tab {tab!r}")
                time.sleep(2)
                driver.save_screenshot(str(out / name))
                written.append(out / name)
        finally:
            driver.quit()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "images")
    parser.add_argument("--tasks", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "runs.db"
        began = time.perf_counter()
        runs = pipeline_runs(store, args.tasks)
        print(f"ran the flows in {time.perf_counter() - began:.0f} s")
        for path in screenshots(store, runs, args.out):
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
